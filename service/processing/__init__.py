"""From the tick queue to the stages: the engine task, the batch and its walk, the live view.

One consumer takes ticks from the queue and runs the engine on them
(:mod:`~service.processing.engine_task`); each batch then walks one ordered
list of stages (:mod:`~service.processing.batch`), built in one place, the
composition root. What readers (dashboards, the API) need of the running
engine they read from the :class:`~service.processing.live_view.LiveView`
the engine task keeps up to date.
"""

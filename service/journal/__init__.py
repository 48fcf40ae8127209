"""The journal: alerts, their deliveries, subscribers and secrets, written before any send.

:mod:`~service.journal.roles` says what the service needs of it, one role per
use; :mod:`~service.journal.records` holds the rows it keeps;
:mod:`~service.journal.sqlite` is the embedded implementation.
"""

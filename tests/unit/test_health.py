"""Readiness, metrics and stats: three views of one snapshot, never disagreeing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.health import (
    DeliverySnapshot,
    EngineSnapshot,
    RoleSnapshot,
    ServiceSnapshot,
    metrics_of,
    not_ready,
    stats_of,
)
from service.hub.server import HubStats
from service.streams.source import SourceSnapshot

NAMES = st.sampled_from(["broker", "feed", "file", "sim"])
STATES = st.sampled_from(
    ["starting", "connected", "disconnected", "silent", "replaying", "finished", "running"]
)
COUNTS = st.integers(min_value=0, max_value=10**9)


@st.composite
def snapshots(draw: st.DrawFn) -> ServiceSnapshot:
    names = draw(st.lists(NAMES, unique=True, max_size=4))
    sources = [
        SourceSnapshot(
            name=name,
            state=draw(STATES),
            problem=draw(st.none() | st.just("client id conflict: taken over")),
            accepted=draw(COUNTS),
        )
        for name in names
    ]
    return ServiceSnapshot(
        sources=sources,
        engine=EngineSnapshot(
            ticks=draw(COUNTS),
            ticks_by_source={name: draw(COUNTS) for name in names},
            redelivered_by_source={name: draw(COUNTS) for name in names},
            alerts=draw(COUNTS),
            alerts_by={("IWM", "break_below"): draw(COUNTS)},
            rejected=draw(COUNTS),
            rejected_by_reason={"bad_price": draw(COUNTS)},
            queue_depth=draw(COUNTS),
            queue_size=10_000,
            queue_full_waits=draw(COUNTS),
            last_tick_age_s={"IWM": 1.5},
        ),
        articles=draw(COUNTS),
        articles_rejected=draw(COUNTS),
        delivery=DeliverySnapshot(
            pending=draw(COUNTS),
            by_channel={"email": {"sent": draw(COUNTS)}},
            outcomes={("email", "sent"): draw(COUNTS)},
            subscribers=draw(COUNTS),
            journal_failures=draw(COUNTS),
            holding=draw(st.integers(0, 3)),
        ),
        hub=draw(
            st.none()
            | st.builds(
                HubStats,
                clients=COUNTS,
                queued_alerts=COUNTS,
                alerts_published=COUNTS,
                slow_disconnects=COUNTS,
                ticks_dropped=COUNTS,
                bad_messages=COUNTS,
                refused=COUNTS,
                idle_disconnects=COUNTS,
                over_connection_limit=COUNTS,
            )
        ),
        role=draw(
            st.builds(
                RoleSnapshot,
                role=st.sampled_from(["all", "engine", "delivery", "gateway", "api"]),
                shard=st.sampled_from(["", "0/2", "1/2"]),
                state=st.sampled_from(["running", "standby", "active", "lost"]),
                following=st.none() | st.booleans(),
                alerts_followed=COUNTS,
                foreign_ticks=COUNTS,
            )
        ),
    )


@given(snapshots())
def test_the_three_views_of_one_snapshot_agree(snapshot: ServiceSnapshot) -> None:
    metrics = metrics_of(snapshot)
    stats = stats_of(snapshot, lag_max_s=0.25)
    reasons = not_ready(snapshot)
    role = snapshot.role
    assert metrics.role == (role.role, role.shard, role.state)
    assert stats["role"] == {
        "role": role.role,
        "shard": role.shard,
        "state": role.state,
        "following": role.following,
        "alerts_followed": role.alerts_followed,
        "foreign_ticks": role.foreign_ticks,
    }
    assert (metrics.alerts_followed, metrics.foreign_ticks) == (
        role.alerts_followed,
        role.foreign_ticks,
    )
    if role.state == "standby":
        # A standby's sources are not started: that it waits is all /readyz says.
        assert reasons == [f"engine shard {role.shard or '0/1'}: standby; another process runs it"]
        return
    assert any("its lock is lost" in reason for reason in reasons) == (role.state == "lost")
    assert any("alert feed" in reason for reason in reasons) == (role.following is False)
    sources = stats["sources"]
    assert isinstance(sources, dict)
    for source in snapshot.sources:
        ticks = snapshot.engine.ticks_by_source[source.name]
        assert metrics.ticks_by_source[source.name] == sources[source.name]["ticks"] == ticks
        assert sources[source.name]["state"] == source.state
        redelivered = snapshot.engine.redelivered_by_source[source.name]
        assert metrics.redelivered_by_source[source.name] == redelivered
        assert sources[source.name].get("redelivered", 0) == redelivered
        up = metrics.source_up[source.name]
        named = any(reason.startswith(f"source {source.name}:") for reason in reasons)
        assert up is not named  # down in /metrics exactly when /readyz names it
    assert (stats["alerts"], stats["rejected"]) == (
        snapshot.engine.alerts,
        snapshot.engine.rejected,
    )
    assert metrics.journal_failures == snapshot.delivery.journal_failures
    deliveries = stats["deliveries"]
    assert isinstance(deliveries, dict)
    assert deliveries["journal_failures"] == snapshot.delivery.journal_failures
    assert metrics.delivery_pending == deliveries["pending"] == snapshot.delivery.pending
    clients = 0 if snapshot.hub is None else snapshot.hub.clients
    assert metrics.ws_clients == clients
    assert (stats["ws"] or {"clients": 0})["clients"] == clients  # type: ignore[index]
    assert ("journal: " in " ".join(reasons)) == (snapshot.delivery.holding > 0)


def test_a_source_is_not_ready_for_its_problem_or_its_state() -> None:
    engine = EngineSnapshot(
        ticks=0,
        ticks_by_source={},
        alerts=0,
        alerts_by={},
        rejected=0,
        rejected_by_reason={},
        queue_depth=0,
        queue_size=1,
        queue_full_waits=0,
        last_tick_age_s={},
    )
    delivery = DeliverySnapshot(
        pending=0, by_channel={}, outcomes={}, subscribers=0, journal_failures=0, holding=2
    )
    snapshot = ServiceSnapshot(
        sources=[
            SourceSnapshot(name="a", state="connected"),
            SourceSnapshot(name="b", state="disconnected"),
            SourceSnapshot(name="c", state="silent", problem="link silent for 5.3 s"),
            SourceSnapshot(name="d", state="finished"),
        ],
        engine=engine,
        articles=0,
        articles_rejected=0,
        delivery=delivery,
        hub=None,
    )
    assert not_ready(snapshot) == [
        "journal: 2 alerts held in memory, not yet written",
        "source b: disconnected",
        "source c: link silent for 5.3 s",
    ]

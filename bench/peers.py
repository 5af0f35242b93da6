"""Row 5: dbhealth against django-health-check and django-watchman on the same aliases.

Every contender runs in a subprocess (``bench.peer_check``) under this module's own
timeout, so a check that never answers is reported as such instead of hanging the run.
Cases: healthy aliases (interleaved, medians), for the three plain aliases and for
all fourteen; then one silent PostgreSQL alias added, once with each tool as installed
(the alias has no driver timeouts, as in most settings) and once with the peers given
equivalent bounds (``connect_timeout`` in the alias's OPTIONS, health-check's per-check
``timeout`` set to dbhealth's).
"""

from __future__ import annotations

from bench.children import Answer, run_json
from bench.report import Line, ms

PEERS = ["django-health-check", "django-watchman"]
CONTENDERS = ["dbhealth", *PEERS]


def _child(args: list[str], limit: float, extra_env: dict[str, str]) -> Answer:
    """Run ``python -m bench.peer_check ARGS`` for at most ``limit`` seconds."""
    return run_json("bench.peer_check", args, limit, extra_env)


def _healthy(aliases: list[str], budget: float, label: str) -> Line:
    answer = _child(["sample", str(budget), *aliases], budget * 3 + 60, {})
    benchmark = f"peers, {label}: wall time of one check of every alias, median"
    if answer.data is None:
        return Line("5", benchmark, answer.problem, "", "", "dbhealth fastest", False)
    medians = {name: value * 1000 for name, value in answer.data["medians_s"].items()}
    ours = medians["dbhealth"]
    broken = answer.data["broken"]
    return Line(
        row="5",
        benchmark=benchmark,
        dbhealth=ms(ours),
        reference=", ".join(f"{peer} {ms(medians[peer])}" for peer in PEERS),
        result=", ".join(
            f"{medians[peer] / ours:.2f}× dbhealth's time for {peer}" for peer in PEERS
        )
        + f" ({answer.data['rounds']} rounds{'' if answer.data['settled'] else ', not settled'})"
        + (f"; failed checks: {broken}" if broken else ""),
        target="dbhealth fastest",
        holds=all(ours < medians[peer] for peer in PEERS) and not broken,
        data={"aliases": aliases, **answer.data},
    )


def _silent(aliases: list[str], silent: str, timeout: float, limit: float, bounded: bool) -> Line:
    extra = {"DBHEALTH_BENCH_DRIVER_TIMEOUTS": "1"} if bounded else {}
    answers = {
        name: _child(["answer", name, *aliases, silent], limit, extra) for name in CONTENDERS
    }
    within = timeout * 1.2

    def seconds(name: str) -> float | None:
        data = answers[name].data
        return None if data is None else float(data["answered_s"])

    def shown(name: str) -> str:
        value = seconds(name)
        return answers[name].problem if value is None else f"{value:.2f} s"

    ours = seconds("dbhealth")
    our_statuses = (answers["dbhealth"].data or {}).get("statuses", {})
    ours_right = our_statuses.get(silent) is False and all(our_statuses.get(a) for a in aliases)
    peers_in_time = [p for p in PEERS if (value := seconds(p)) is not None and value <= within]
    faster = ours is not None and all((value := seconds(p)) is None or ours < value for p in PEERS)
    how = (
        "peers given equivalent bounds (driver connect_timeout, "
        f"health-check timeout {timeout:g} s)"
        if bounded
        else "each tool as installed (no driver timeouts in the alias)"
    )
    answered_in_time = (["dbhealth"] if ours is not None and ours <= within else []) + peers_in_time
    return Line(
        row="5",
        benchmark=f"peers, {len(aliases)} healthy + 1 silent alias, {how}: time to answer",
        dbhealth=shown("dbhealth"),
        reference=", ".join(f"{peer} {shown(peer)}" for peer in PEERS),
        result=f"answered within {within:g} s: {', '.join(answered_in_time) or 'none'}",
        target=f"dbhealth fastest, the only one within {within:g} s",
        holds=faster and ours_right and answered_in_time == ["dbhealth"],
        data={
            "bounded": bounded,
            "answers": {name: answer.data for name, answer in answers.items()},
            "problems": {name: answer.problem for name, answer in answers.items()},
        },
    )


def run(
    plain: list[str], every: list[str], silent: str, timeout: float, budget: float, limit: float
) -> list[Line]:
    return [
        _healthy(plain, budget, f"{len(plain)} healthy aliases ({', '.join(plain)})"),
        _healthy(
            every, budget, f"{len(every)} healthy aliases (6 PostgreSQL, 5 MariaDB, 3 SQLite)"
        ),
        _silent(plain, silent, timeout, limit, bounded=False),
        _silent(plain, silent, timeout, limit, bounded=True),
    ]

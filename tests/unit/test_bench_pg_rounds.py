"""With --pg-stats the benchmark says what PostgreSQL did during each of this project's rounds (bench/run.py
`pg_change`): the statements that took the most time, how many plans were made, and the checkpoints and
autovacuum runs between the round's two snapshots, so a round much dearer than its neighbours can be read."""

from __future__ import annotations

from bench import run


def snapshot(statements: dict, checkpoints: tuple = (0, 0), vacuums: tuple = (0, 0)) -> dict:
    return {"statements": statements, "checkpoints": checkpoints, "vacuums": vacuums}


def test_a_rounds_change_names_the_dearest_statements_first_with_their_calls_plans_and_blocks():
    before = snapshot({1: (10, 1, 5.0, 100, "SELECT claim"), 2: (4, 1, 2.0, 40, "INSERT invocation")})
    after = snapshot(
        {
            1: (30, 4, 65.0, 2100, "SELECT claim"),  # 20 calls, 3 plans, 60 ms, 100 blocks per call
            2: (14, 1, 12.0, 140, "INSERT invocation"),  # 10 calls, 10 ms
            3: (2, 2, 1.0, 6, "UPDATE new"),  # first seen in this round
            4: (7, 7, 9.0, 9, "idle"),  # no call in this round: not named
        },
        checkpoints=(1, 250),
        vacuums=(2, 10),
    )
    before["statements"][4] = (7, 7, 9.0, 9, "idle")
    text = run.pg_change(before, after)
    parts = text.split("; ")
    assert parts[0] == "60 ms 20 calls 3 plans 100 blk/call `SELECT claim`"
    assert parts[1] == "10 ms 10 calls 0 plans 10 blk/call `INSERT invocation`"
    assert parts[2] == "1 ms 2 calls 2 plans 3 blk/call `UPDATE new`"
    assert "idle" not in text
    assert parts[-1] == "checkpoints 1 (250 buffers written), autovacuum/analyze runs 2"


def test_a_rounds_change_keeps_the_top_statements_only():
    after = snapshot({n: (1, 0, float(n), 1, f"statement {n}") for n in range(10)})
    parts = run.pg_change(snapshot({}), after, top=3).split("; ")
    assert [p.split("`")[1] for p in parts[:-1]] == ["statement 9", "statement 8", "statement 7"]

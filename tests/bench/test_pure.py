"""The benchmark's pure parts: wrk report parsing, aggregation, ratios, templates, profiles."""

from __future__ import annotations

import itertools

import pytest
from bench.lab import Target
from bench.profile import frame_name, summarise_collapsed
from bench.route_change import site_file_text, summarise_ms
from bench.throughput import add_ratios, rotation, round_order
from bench.wrk import (
    REPORT_SCRIPT,
    WrkResult,
    median_result,
    parse_report,
    request_script,
    wrk_command,
)

from bench import configs, duel, processes, report

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:8080/small
  1 threads and 64 connections
  Latency Distribution
     50%    1.20ms
     99%    4.51ms
  40000 requests in 2.00s, 5.00MB read
Requests/sec:  20000.00
BENCH_JSON {"requests":40000,"duration_us":2000000,"bytes":5000000,"connect_errors":0,"read_errors":1,"write_errors":0,"status_errors":3,"timeouts":2,"p50_us":1200,"p90_us":2500,"p99_us":4510,"max_us":9000,"mean_us":1300.5}
"""


def test_parse_report_reads_the_json_line_exactly() -> None:
    result = parse_report(WRK_OUTPUT)
    assert result.requests == 40000
    assert result.requests_per_s == pytest.approx(20000.0)
    assert (result.p50_ms, result.p90_ms, result.p99_ms, result.max_ms) == (1.2, 2.5, 4.51, 9.0)
    assert result.errors == 6  # read + timeout + non-2xx
    assert result.status_errors == 3


def test_parse_report_without_json_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="BENCH_JSON"):
        parse_report("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_wrk_command_is_bounded_loopback_with_whole_seconds() -> None:
    argv = wrk_command("wrk", 8080, "/small", "a.test", 2.4, 64, 1, {"Authorization": "Basic x"})
    assert argv[-1] == "http://127.0.0.1:8080/small"
    assert "-d2s" in argv and "-c64" in argv and "--latency" in argv
    assert argv[argv.index("-H") + 1] == "Host: a.test"
    assert "Authorization: Basic x" in argv
    assert "-d1s" in wrk_command("wrk", 1, "/", "h", 0.2, 1)


def test_a_request_script_goes_before_the_report_hook(tmp_path) -> None:
    assert request_script("get", tmp_path) == REPORT_SCRIPT
    post = request_script("post", tmp_path).read_text()
    assert post.index('wrk.method = "POST"') < post.index("done = function")
    assert post.endswith(REPORT_SCRIPT.read_text())
    assert request_script("chunked", tmp_path) == REPORT_SCRIPT  # a plain GET of its page
    forwarded = request_script("forwarded", tmp_path).read_text()
    assert 'wrk.headers["X-Forwarded-For"]' in forwarded
    argv = wrk_command("wrk", 1, "/", "h", 1, 1, script=tmp_path / "wrk-post.lua")
    assert argv[argv.index("-s") + 1] == str(tmp_path / "wrk-post.lua")


def _result(rps: float, p99: float, errors: int = 0) -> WrkResult:
    return WrkResult(100, 1.0, rps, 1.0, 2.0, p99, 9.0, errors, 0)


def test_median_result_takes_medians_and_sums_errors() -> None:
    summary = median_result([_result(100, 5), _result(300, 1, errors=2), _result(200, 3)])
    assert summary["requests_per_s"] == 200
    assert summary["p99_ms"] == 3
    assert summary["errors"] == 2
    assert summary["runs"] == 3
    with pytest.raises(ValueError):
        median_result([])


def test_rotation_starts_each_round_one_target_later() -> None:
    targets = [Target(name, 1, None) for name in "abc"]
    assert [t.name for t in rotation(targets, 0)] == ["a", "b", "c"]
    assert [t.name for t in rotation(targets, 1)] == ["b", "c", "a"]
    assert [t.name for t in rotation(targets, 4)] == ["b", "c", "a"]
    assert rotation([], 3) == []


@pytest.mark.parametrize("count", [2, 3, 4, 9])
@pytest.mark.parametrize("rounds", [2, 6, 10])
def test_every_pair_runs_in_both_orders_equally_often(count: int, rounds: int) -> None:
    """vhostd then vhostd+auth in half the rounds, the other way round in the other half."""
    names = "abcdefghi"[:count]
    targets = [Target(name, 1, None) for name in names]
    orders = ["".join(t.name for t in round_order(targets, r)) for r in range(rounds)]
    assert all(sorted(order) == list(names) for order in orders)
    for first, second in itertools.combinations(names, 2):
        ahead = sum(order.index(first) < order.index(second) for order in orders)
        assert ahead == rounds // 2, (first, second, orders)


def test_add_ratios_relative_to_nginx() -> None:
    summary = {
        "nginx": {"12B": {"requests_per_s": 200.0, "p99_ms": 2.0}},
        "vhostd": {"12B": {"requests_per_s": 250.0, "p99_ms": 3.0}},
    }
    add_ratios(summary, "nginx")
    assert summary["vhostd"]["12B"]["ratio_to_nginx"] == 1.25
    assert summary["vhostd"]["12B"]["p99_ratio_to_nginx"] == 1.5
    assert summary["nginx"]["12B"]["ratio_to_nginx"] == 1.0
    add_ratios(summary, "haproxy")  # absent reference: nothing added, nothing raised
    assert "ratio_to_haproxy" not in summary["vhostd"]["12B"]


def test_throughput_table_has_a_row_per_target_and_size() -> None:
    summary = {
        "nginx": {
            "12B": {"requests_per_s": 200.0, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0},
            "64KiB": {"requests_per_s": 100.0, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0},
        },
        "vhostd": {
            "12B": {
                "requests_per_s": 250.0,
                "p50_ms": 1.0,
                "p99_ms": 3.0,
                "errors": 1,
                "cpu_us_per_request": 40.4,
            }
        },
    }
    add_ratios(summary, "nginx")
    table = report.throughput_table(summary)
    rows = [line.split() for line in table.splitlines()[2:] if line.strip()]
    assert ["vhostd", "12B", "250", "1.00", "3.00", "1", "1.25", "1.50", "40"] in rows
    assert len(rows) == 3


def test_render_fills_placeholders_and_rejects_unknown_ones() -> None:
    assert configs.render("listen {{port}}; x $host;", {"port": 81}) == "listen 81; x $host;"
    with pytest.raises(KeyError, match="origin_port"):
        configs.render("{{origin_port}}", {})


def test_origin_bodies_are_12_bytes_and_64_kib(tmp_path) -> None:
    configs.write_origin_files(tmp_path)
    assert len((tmp_path / "small").read_bytes()) == 12
    assert len((tmp_path / "64k").read_bytes()) == 64 * 1024


def test_route_change_summary_counts_misses() -> None:
    assert summarise_ms([0.010, None, 0.030, 0.020]) == {
        "samples": 4,
        "missed": 1,
        "median_ms": 20.0,
        "max_ms": 30.0,
    }
    assert summarise_ms([None])["median_ms"] is None
    assert 'hosts = ["a.test"]' in site_file_text("a", "a.test", 9)


def test_profile_summary_counts_event_loop_samples_only() -> None:
    lines = [
        "main (vhostd/cli/main.py:10);data_received (/x/src/vhostd/proxy/client.py:5) 30",
        "main (vhostd/cli/main.py:10);_flush (/x/src/vhostd/proxy/client.py:9) 10",
        "Thread._bootstrap (threading.py:1);_worker (concurrent/futures/thread.py:2) 99",
    ]
    total, self_counts, inclusive = summarise_collapsed(lines)
    assert total == 40
    assert self_counts["data_received (vhostd/proxy/client.py)"] == 30
    assert inclusive["main (vhostd/cli/main.py)"] == 40
    assert frame_name("f (/usr/lib/python3.11/site-packages/uvloop/__init__.py:3)") == (
        "f (uvloop/__init__.py)"
    )


def test_ratios_are_paired_round_by_round() -> None:
    from bench.throughput import paired_ratio

    # round 2 ran while the machine was busy: both dropped, the paired ratio stays 1.25
    assert paired_ratio([125.0, 50.0, 250.0], [100.0, 40.0, 200.0]) == 1.25
    assert paired_ratio([1.0], [0.0]) is None
    summary = {
        "nginx": {
            "12B": {
                "requests_per_s": 100.0,
                "p99_ms": 2.0,
                "rounds_requests_per_s": [100.0, 40.0, 200.0],
                "rounds_p99_ms": [2.0, 8.0, 1.0],
            }
        },
        "vhostd": {
            "12B": {
                "requests_per_s": 125.0,
                "p99_ms": 2.0,
                "rounds_requests_per_s": [125.0, 50.0, 250.0],
                "rounds_p99_ms": [2.0, 4.0, 2.0],
            }
        },
    }
    add_ratios(summary, "nginx")
    assert summary["vhostd"]["12B"]["ratio_to_nginx"] == 1.25
    assert summary["vhostd"]["12B"]["p99_ratio_to_nginx"] == 1.0
    assert summary["vhostd"]["12B"]["ratio_to_nginx_range"] == [1.25, 1.25]
    assert summary["vhostd"]["12B"]["p99_ratio_to_nginx_range"] == [0.5, 2.0]


def test_the_target_table_shows_how_far_single_rounds_spread() -> None:
    summary = _summary()
    summary["throughput"]["vhostd"]["12B"]["ratio_to_nginx_range"] = [0.684, 1.31]
    measured = {label: text for label, text, _ok in report.issue_targets(summary)}
    assert measured["12 B: vhostd ≥ 1.0 × nginx req/s"] == "1.05 (rounds 0.68–1.31)"
    assert measured["64 KiB: vhostd ≥ 1.0 × HAProxy"] == "1.10"  # no rounds recorded


def test_steal_is_the_hypervisors_share_of_the_machines_time() -> None:
    from bench.processes import machine_ticks, steal_percent

    # user nice system idle iowait irq softirq steal guest guest_nice
    before = machine_ticks("cpu  1000 0 500 8000 100 0 300 100 0 0\ncpu0 1 2 3\n")
    after = machine_ticks("cpu  1600 0 800 8100 100 0 400 200 0 0\ncpu0 1 2 3\n")
    assert before == (100, 10000) and after == (200, 11200)
    assert steal_percent(before, after) == 8.3  # 100 of 1,200 ticks
    assert steal_percent(after, after) is None


def _summary() -> dict:
    figures = {"requests_per_s": 100.0, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0}
    return {
        "command": "python -m bench.run",
        "date": "20260101T000000Z",
        "machine": {"cpus": 2},
        "settings": {
            "proxy_cpus": "0",
            "origin_cpus": "1",
            "wrk_cpus": "1",
            "connections": 64,
            "duration_s": 6,
            "repeats": 5,
            "idle_connections": 10000,
        },
        "load_average_before_after": [[1.0], [1.0]],
        "throughput": {
            "nginx": {"12B": dict(figures)},
            "haproxy": {"64KiB": dict(figures)},
            "vhostd": {
                "12B": {**figures, "ratio_to_nginx": 1.05, "p99_ratio_to_nginx": 1.5},
                "64KiB": {**figures, "ratio_to_haproxy": 1.1},
            },
            "vhostd+auth": {"12B": {**figures, "ratio_to_vhostd": 0.95}},
        },
        "rss_idle_mib": {"vhostd": 38.0},
        "idle_wakeups_per_s": {"nginx": 0.0, "vhostd": 4.2},
        "idle_connections": {"vhostd": {"connections_held": 10000, "rss_delta_mib": 120.0}},
        "route_change_file": {"samples": 10, "missed": 0, "median_ms": 20.0, "max_ms": 30.0},
        "route_change_file_vhostd-w2": {
            "samples": 10,
            "missed": 1,
            "median_ms": 20.0,
            "max_ms": 30.0,
        },
        "worker_scaling": {
            "cores_per_worker": 0.25,
            "cgroup": "v1",
            "workers": {
                "1": {"requests_per_s": 100.0, "ratio_to_one_worker": 1.0},
                "2": {"requests_per_s": 190.0, "ratio_to_one_worker": 1.9},
                "3": {"requests_per_s": 230.0, "ratio_to_one_worker": 2.3},
            },
        },
        "docker": {
            "rolling_restart": {
                "vhostd": {"failed_total": 0, "requests_total": 9, "failed_per_round": [0]}
            }
        },
    }


def test_issue_targets_say_which_goal_is_met() -> None:
    met = {label: ok for label, _measured, ok in report.issue_targets(_summary())}
    assert met["12 B: vhostd ≥ 1.0 × nginx req/s"] is True
    assert met["12 B: vhostd p99 ≤ 1.2 × nginx's"] is False
    assert met["64 KiB: vhostd ≥ 1.0 × HAProxy"] is True
    assert met["12B: basic auth ≥ 0.9 × vhostd without"] is True
    assert met["64KiB: basic auth ≥ 0.9 × vhostd without"] is None  # not measured
    assert met["route change ≤ 100 ms (max of samples)"] is True
    assert met["0 failed requests in a rolling restart"] is True
    assert met["≤ 40 MiB RSS idle"] is True
    assert met["≤ 100 MiB more with 10,000 idle connections"] is False
    assert met["--workers 2: every worker routes a change ≤ 100 ms (max)"] is False  # a miss
    # 3 workers at 2.3 × one: below 0.8 × 3
    assert met["--workers N: req/s ≥ 0.8 × N × one worker's (quota per worker)"] is False


def test_update_readme_replaces_only_the_marked_block(tmp_path) -> None:
    import json

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.RESULTS_START}\nold\n{report.RESULTS_END}\noutro\n")
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(_summary()))
    report.update_readme(readme, summary)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "old" not in text
    assert "| vhostd | 12B | 100 |" in text
    assert "Rolling restart of 2 replicas under load, failed requests: vhostd 0 of 9" in text
    assert "12 B req/s: 1 → 100 (1.00 ×), 2 → 190 (1.90 ×), 3 → 230 (2.30 ×)" in text
    assert "Wake-ups per second while idle (context switches of all threads): nginx 0, vhostd 4.2" in text


def test_per_request_rows_keep_only_the_hot_path() -> None:
    from bench.profile import per_request_rows

    stats = {
        ("/x/src/vhostd/proxy/client.py", 10, "_flush"): (100, 100, 0.002, 0.002, {}),
        ("/x/src/vhostd/proxy/upstream.py", 5, "on_header"): (800, 800, 0.001, 0.001, {}),
        ("/x/src/vhostd/runtime.py", 1, "serve"): (1, 1, 0.5, 9.0, {}),  # once, not per request
    }
    calls, rows = per_request_rows(stats, requests=100, limit=10)
    assert calls == 9.0
    assert rows[0] == (20.0, 1.0, "_flush (vhostd/proxy/client.py)")
    assert rows[1] == (10.0, 8.0, "on_header (vhostd/proxy/upstream.py)")
    assert len(rows) == 2


def test_duel_blocks_run_there_and_back_each_way_in_turn() -> None:
    assert duel.block_order(["a", "b"], 0) == ["a", "b", "b", "a"]
    assert duel.block_order(["a", "b"], 1) == ["b", "a", "a", "b"]
    order = duel.block_order(["a", "b", "c"], 2)
    assert order == ["a", "b", "c", "c", "b", "a"]
    # over two blocks every target runs first, and last, as often as any other
    for position in (0, -1):
        firsts = [duel.block_order(["a", "b"], block)[position] for block in range(4)]
        assert sorted(firsts) == ["a", "a", "b", "b"]


def test_duel_ratio_is_requests_over_the_references_in_one_block() -> None:
    def runs(*rates: float) -> list[duel.Slice]:
        return [duel.Slice(rate, 1.0, 30.0, 0.05, 0.1) for rate in rates]

    block = {"nginx": runs(20_000, 30_000), "vhostd": runs(26_000, 24_000)}
    assert duel.block_ratio(block, "vhostd", "nginx") == pytest.approx(1.0)
    block["vhostd"] = runs(22_000, 33_000)
    assert duel.block_ratio(block, "vhostd", "nginx") == pytest.approx(1.1)


def test_interprocessor_interrupts_sum_rescheduling_and_call_lines_of_all_cpus() -> None:
    interrupts = """           CPU0       CPU1
  0:         34          0   IO-APIC   2-edge      timer
NMI:          0          0   Non-maskable interrupts
LOC:    8811234    8599020   Local timer interrupts
RES:     120000      80000   Rescheduling interrupts
CAL:       4000       6000   Function call interrupts
TLB:        500        700   TLB shootdowns
"""
    assert processes.interprocessor_interrupts(interrupts) == 210_000

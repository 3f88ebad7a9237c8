"""Rebuilding executions from events, the collector's bookkeeping, and the token cost report."""

import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path

from rebuild_execution import ExecutionCollector, main as rebuild_main, rebuild, render
from streamll_event import parse_event
from token_costs import CostReport, Price, load_prices

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "events.jsonl"


def event(span, kind, ms, parent=None, execution="exec-0001", module="Mod", data=None, event_id=None):
    return parse_event(
        json.dumps(
            {
                "schema_version": "1.0",
                "event_id": event_id or f"{span}-{kind}-{ms}",
                "execution_id": execution,
                "span_id": span,
                "parent_span_id": parent,
                "timestamp": f"2026-01-01T00:00:00.{ms:03d}Z",
                "module_name": module,
                "method_name": "forward",
                "event_type": kind,
                "operation": None,
                "data": data or {},
                "tags": {},
                "module_version": None,
                "code_signature": None,
                "git_commit": None,
            }
        )
    )


def usage(prompt, completion, model="gpt-4o-mini"):
    return {
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "model": model,
            "provider": "openai",
        }
    }


def flow():
    """Root span-root0 > child span-llm01 (streams, retries once, uses tokens) and span-llm02 (fails)."""
    return [
        event("span-root0", "start", 0, module="Pipeline", data={"inputs": "q"}),
        event("span-llm01", "start", 1, parent="span-root0", module="LM"),
        event(
            "span-llm01",
            "token",
            2,
            parent="span-root0",
            module="LM",
            data={"field": "answer", "token": "Ly", "token_index": 0},
        ),
        event("span-llm01", "retry", 3, parent="span-root0", module="LM", data={"version": 1}),
        event(
            "span-llm01",
            "token",
            5,
            parent="span-root0",
            module="LM",
            data={"field": "answer", "token": "is", "token_index": 1},
        ),
        event(
            "span-llm01",
            "token",
            4,
            parent="span-root0",
            module="LM",
            data={"field": "answer", "token": "Par", "token_index": 0},
        ),
        event(
            "span-llm01",
            "end",
            6,
            parent="span-root0",
            module="LM",
            data={"duration_ms": 5.5, **usage(100, 20)},
        ),
        event("span-llm02", "start", 7, parent="span-root0", module="LM"),
        event(
            "span-llm02",
            "error",
            8,
            parent="span-root0",
            module="LM",
            data={
                "error_type": "TypeError",
                "error_message": "boom",
                "duration_ms": 1.0,
                **usage(10, 0, "gpt-4o"),
            },
        ),
        event(
            "span-root0",
            "end",
            9,
            module="Pipeline",
            data={"duration_ms": 9.25, "outputs": "Paris", **usage(130, 20)},
        ),
    ]


class RebuildTest(unittest.TestCase):
    def test_tree_status_errors_and_streamed_text(self) -> None:
        events = flow()
        shuffled = list(reversed(events)) + events[:3]  # out of order, with duplicates
        execution = rebuild("exec-0001", shuffled)
        self.assertEqual(len(execution.events), len(events))
        self.assertEqual([root.span_id for root in execution.roots], ["span-root0"])
        root = execution.roots[0]
        self.assertEqual(
            (root.status, root.duration_ms, root.inputs, root.outputs), ("ok", 9.25, "q", "Paris")
        )
        self.assertEqual([child.span_id for child in root.children], ["span-llm01", "span-llm02"])
        llm, failing = root.children
        self.assertEqual(llm.streamed_text, {"answer": "Paris"})
        self.assertEqual(llm.token_count, 2)
        self.assertEqual([e.event_type for e in llm.custom_events], ["retry"])
        self.assertEqual(
            (failing.status, failing.error.type, failing.error.message), ("error", "TypeError", "boom")
        )
        self.assertTrue(execution.failed)
        self.assertTrue(execution.complete)
        self.assertEqual(execution.duration_ms, 9.25)

    def test_usage_counts_every_request_once(self) -> None:
        execution = rebuild("exec-0001", flow())
        by_module = execution.usage_by_module()
        # The pipeline reported everything nested in it (130 + 20); its own share is what the children did not.
        self.assertEqual(by_module["Pipeline"]["total_tokens"], 150 - 120 - 10)
        self.assertEqual(by_module["LM"]["total_tokens"], 130)
        self.assertEqual(by_module["LM"]["calls"], 2)
        # A parent reporting less than its children counted only its own requests.
        events = flow()[:-1] + [event("span-root0", "end", 9, module="Pipeline", data=usage(5, 5))]
        self.assertEqual(rebuild("exec-0001", events).usage_by_module()["Pipeline"]["total_tokens"], 10)

    def test_render(self) -> None:
        text = render(rebuild("exec-0001", flow()))
        # The top-level call succeeded; one span inside it failed.
        self.assertEqual("execution exec-0001: ok, 9.2 ms, 3 spans, 1 failed span(s)", text.splitlines()[0])
        self.assertIn(
            "    LM.forward [ok, 5.5 ms]\n      usage: 120 tokens (100 prompt + 20 completion, gpt-4o-mini)\n"
            '      streamed answer: "Paris"',
            text,
        )
        self.assertIn("LM.forward [error, 1.0 ms] TypeError: boom", text)
        self.assertIn(
            "    LM: 130 tokens (110 prompt + 20 completion) in 2 call(s), gpt-4o-mini, gpt-4o", text
        )


class CollectorTest(unittest.TestCase):
    def test_hands_over_complete_executions_and_counts_the_rest(self) -> None:
        done = []
        collector = ExecutionCollector(done.append)
        lines = [e.model_dump_json().encode() for e in flow()]
        collector.add(b"\xff not json", 0, 0, "t[0]@0")
        for offset, line in enumerate(lines[:4], start=1):
            collector.add(line, 0, offset, f"t[0]@{offset}")
        other = event("span-other", "start", 0, execution="exec-0002")
        collector.add(other.model_dump_json().encode(), 0, 5, "t[0]@5")
        self.assertEqual(collector.committable(), {0: 1})  # the first event of exec-0001 is still needed
        for offset, line in enumerate(lines[4:], start=6):
            collector.add(line, 0, offset, f"t[0]@{offset}")
        collector.add(lines[0], 0, 20, "t[0]@20")  # redelivered after the execution was handed over
        self.assertEqual([execution.execution_id for execution in done], ["exec-0001"])
        self.assertEqual(collector.committable(), {0: 5})
        stats = collector.stats
        self.assertEqual((stats.invalid, stats.completed, stats.late, stats.events), (1, 1, 1, 12))
        self.assertEqual([execution.execution_id for execution in collector.unfinished()], ["exec-0002"])

    def test_an_event_outside_any_span_is_a_whole_execution(self) -> None:
        done = []
        collector = ExecutionCollector(done.append)
        collector.add(event("span-solo", "deployed", 0, execution="exec-solo").model_dump_json(), 0, 0, "x")
        self.assertEqual(len(done), 1)
        self.assertEqual(done[0].roots[0].custom_events[0].event_type, "deployed")

    def test_waits_out_of_order_events_of_a_whole_execution(self) -> None:
        # The root's end read first, then its start: whole by every rule the collector can check, yet nine
        # events of it are still to come. It waits out the grace period, restarted by each event.
        now = [100.0]
        done = []
        collector = ExecutionCollector(done.append, grace=2.0, clock=lambda: now[0])
        events = flow()
        for offset, item in enumerate([events[-1], events[0], *events[1:-1]]):
            collector.add(item.model_dump_json(), 0, offset, f"t[0]@{offset}")
            now[0] += 0.5
        collector.flush()
        self.assertEqual(done, [])  # 0.5 s since the last event
        now[0] += 1.5
        collector.flush()
        self.assertEqual([len(execution.events) for execution in done], [len(events)])
        self.assertEqual(len(done[0].spans), 3)
        collector.add(event("span-llm03", "start", 9, parent="span-root0").model_dump_json(), 0, 10, "x")
        self.assertEqual((collector.stats.completed, collector.stats.late), (1, 1))

    def test_a_span_is_open_until_both_its_start_and_its_end_are_read(self) -> None:
        done = []
        collector = ExecutionCollector(done.append)
        events = flow()
        child_end, child_start = events[6], events[1]  # span-llm01's end read first, its start last
        order = [events[0], child_end, *[e for e in events[2:] if e is not child_end], child_start]
        for offset, item in enumerate(order):
            self.assertEqual(done, [], f"handed over before event {offset}")
            collector.add(item.model_dump_json(), 0, offset, f"t[0]@{offset}")
        self.assertEqual([len(execution.events) for execution in done], [len(events)])
        self.assertEqual(done[0].spans["span-llm01"].status, "ok")
        self.assertEqual(collector.stats.late, 0)

    def test_json_output_is_strict_json(self) -> None:
        sample = json.loads(SAMPLE.read_bytes().splitlines()[0])
        lines = [
            json.dumps({**sample, "data": {"v": float("nan")}}),  # NaN, which json.dumps writes by default
            json.dumps({**sample, "event_id": "event-inf", "data": {"v": float("inf")}}),
            *(line.decode() for line in SAMPLE.read_bytes().splitlines()),
        ]
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "events.jsonl"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            out = io.StringIO()
            with redirect_stdout(out):
                self.assertEqual(rebuild_main(["--input", str(path), "--json"]), 0)

        def reject(constant: str) -> None:
            raise ValueError(f"{constant} is not JSON")

        printed = [json.loads(line, parse_constant=reject) for line in out.getvalue().splitlines()]
        self.assertTrue(printed)
        self.assertNotIn("NaN", out.getvalue())
        self.assertNotIn("Infinity", out.getvalue())

    def test_output_never_stops_the_consumer(self) -> None:
        # A terminal that cannot encode a character: print() escapes it instead of raising.
        lines = [json.loads(line) for line in SAMPLE.read_bytes().splitlines()]
        sample = next(line for line in lines if line["event_type"] == "deployed")  # a whole execution
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "events.jsonl"
            path.write_text(json.dumps({**sample, "module_name": "Modulé ✓"}) + "\n", encoding="utf-8")
            result = subprocess.run(
                [sys.executable, str(HERE.parent / "rebuild_execution.py"), "--input", str(path)],
                env={**os.environ, "PYTHONIOENCODING": "ascii"},
                capture_output=True,
                timeout=60,
            )
        self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
        self.assertIn(b"Modul\\xe9 \\u2713", result.stdout)

    def test_reads_a_jsonl_file(self) -> None:
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(rebuild_main(["--input", str(SAMPLE), "--json"]), 0)
        executions = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertTrue(executions)
        self.assertTrue(all(execution["complete"] for execution in executions))


class TokenCostsTest(unittest.TestCase):
    def test_prices_each_model(self) -> None:
        report = CostReport(load_prices(None, ["gpt-4o-mini=0.15,0.60"]))
        report.add(rebuild("exec-0001", flow()))
        models = report.priced()
        self.assertEqual(models["gpt-4o-mini"].calls, 2)  # the LM call, and the pipeline's own share
        self.assertEqual(models["gpt-4o-mini"].total_tokens, 140)
        self.assertAlmostEqual(models["gpt-4o-mini"].cost_usd, (120 * 0.15 + 20 * 0.60) / 1e6)
        self.assertIsNone(models["gpt-4o"].cost_usd)
        self.assertEqual(report.unpriced(), ["gpt-4o"])
        self.assertEqual(load_prices(None, ["m=1,2"]), {"m": Price(1.0, 2.0)})


if __name__ == "__main__":
    unittest.main()

"""Per-model token totals and cost from the ``data.usage`` of streamll events on a Kafka topic.

Rebuilds executions as rebuild_execution.py does, so each model request is counted once even when an enclosing
call reports the usage of everything nested in it, then prices each model's tokens with a price table:

    python token_costs.py --bootstrap-servers localhost:9092 --topic streamll_events \\
        --group-id streamll-costs --stop-at-end --prices prices.json
    python token_costs.py ... --price gpt-4o-mini=0.15,0.60 --price gpt-4o=2.50,10.00

A price table is JSON: ``{"gpt-4o-mini": {"prompt": 0.15, "completion": 0.60}}``, US dollars per million
tokens. Models without a price are counted and listed, not priced.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import asdict, dataclass
from typing import Optional

from rebuild_execution import COUNTS, Execution, ExecutionCollector, add_source_arguments, run
from streamll_event import tolerant_stdout


@dataclass(frozen=True)
class Price:
    prompt: float
    completion: float

    def __post_init__(self) -> None:
        # A NaN or infinite price makes the totals NaN or Infinity, which the JSON report cannot carry.
        if not all(math.isfinite(value) and value >= 0 for value in (self.prompt, self.completion)):
            raise ValueError("a price must be a finite number, 0 or more")


@dataclass
class ModelTotals:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: Optional[float] = None


def load_prices(path: Optional[str], inline: list[str]) -> dict[str, Price]:
    """Prices from a JSON file and ``MODEL=PROMPT,COMPLETION`` arguments (the arguments win)."""
    prices: dict[str, Price] = {}
    if path is not None:
        with open(path, encoding="utf-8") as file:
            for model, entry in json.load(file).items():
                prices[model] = Price(float(entry["prompt"]), float(entry["completion"]))
    for item in inline:
        model, _, pair = item.partition("=")
        prompt, _, completion = pair.partition(",")
        try:
            prices[model.strip()] = Price(float(prompt), float(completion))
        except ValueError:
            raise SystemExit(
                f"--price {item!r}: expected MODEL=PROMPT,COMPLETION in USD per million tokens"
            ) from None
    return prices


class CostReport:
    def __init__(self, prices: dict[str, Price]):
        self.prices = prices
        self.models: dict[str, ModelTotals] = {}

    def add(self, execution: Execution) -> None:
        for span in execution.spans.values():
            usage = span.own_usage
            if usage is None:
                continue
            totals = self.models.setdefault(usage.model, ModelTotals())
            totals.calls += 1
            for key in COUNTS:
                setattr(totals, key, getattr(totals, key) + getattr(usage, key))

    def priced(self) -> dict[str, ModelTotals]:
        for model, totals in self.models.items():
            price = self.prices.get(model)
            if price is not None:
                totals.cost_usd = (
                    totals.prompt_tokens * price.prompt + totals.completion_tokens * price.completion
                ) / 1e6
        return dict(sorted(self.models.items()))

    def total_usd(self) -> float:
        return sum(totals.cost_usd or 0.0 for totals in self.priced().values())

    def unpriced(self) -> list[str]:
        return sorted(model for model in self.models if model not in self.prices)

    def render(self) -> str:
        lines = [
            f"{'model':<24} {'calls':>6} {'prompt':>10} {'completion':>10} {'total':>10} {'cost USD':>12}"
        ]
        for model, totals in self.priced().items():
            cost = "unpriced" if totals.cost_usd is None else f"{totals.cost_usd:.6f}"
            lines.append(
                f"{model:<24} {totals.calls:>6} {totals.prompt_tokens:>10} {totals.completion_tokens:>10} "
                f"{totals.total_tokens:>10} {cost:>12}"
            )
        lines.append(f"{'total':<24} {'':>6} {'':>10} {'':>10} {'':>10} {self.total_usd():>12.6f}")
        return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_source_arguments(parser)
    parser.set_defaults(group_id="streamll-token-costs")
    parser.add_argument("--prices", metavar="FILE", help="JSON price table, USD per million tokens")
    parser.add_argument("--price", action="append", default=[], metavar="MODEL=PROMPT,COMPLETION")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    tolerant_stdout()

    report = CostReport(load_prices(args.prices, args.price))
    collector = ExecutionCollector(report.add, max_pending=args.max_pending, grace=args.grace)
    run(args, collector)
    # Tokens of calls that ended are spent even when their execution had not ended when reading stopped.
    for execution in collector.unfinished():
        report.add(execution)
    if args.json:
        models = {model: asdict(totals) for model, totals in report.priced().items()}
        summary = {"models": models, "total_usd": report.total_usd(), "unpriced": report.unpriced()}
        print(json.dumps(summary, allow_nan=False))  # NaN and Infinity are not JSON
    else:
        print(report.render())
        if report.unpriced():
            print(f"no price for: {', '.join(report.unpriced())}")
    logging.getLogger("streamll.token_costs").info("%s", collector.stats.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())

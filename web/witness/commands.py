"""`cleack witness`: cosign a log's checkpoints, refusing forks and rewritten history."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from web.fairness.note import VerifierKey, parse_verifier_key
from web.witness.state import WitnessConfig, WitnessStateError


def _log_keys(context: click.Context, parameter: click.Parameter, values: tuple[str, ...]) -> list[VerifierKey]:
    try:
        return [parse_verifier_key(value) for value in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _listen_address(context: click.Context, parameter: click.Parameter, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter("give host:port, such as 127.0.0.1:8010 or [::1]:8010")
    return host.removeprefix("[").removesuffix("]"), int(port)


@click.command("witness")
@click.option(
    "--listen",
    default="127.0.0.1:8010",
    show_default=True,
    callback=_listen_address,
    help="The address and port to serve on.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/witness"),
    show_default=True,
    help="Where the witness keeps its key, its state, its history and the forks it saw.",
)
@click.option("--name", help="The witness's key name, such as witness.example.org/w1.  [default: <hostname>/witness]")
@click.option(
    "--log",
    "logs",
    multiple=True,
    callback=_log_keys,
    help="The verifier key of a log to witness (<origin>+<key hash>+<key>); repeat for each log and each of its keys.",
)
@click.option("--print-key", is_flag=True, help="Print the witness's verifier key (made on first use) and exit.")
def witness(
    listen: tuple[str, int], data_dir: Path, name: str | None, logs: list[VerifierKey], print_key: bool
) -> None:
    """Serve a witness that cosigns the checkpoints of the logs given with --log.

    It cosigns a checkpoint only if the record hashes sent with it extend the head it last cosigned for that log,
    and keeps the evidence of every fork or rewritten history it refuses in DATA_DIR/forks.
    """
    import uvicorn

    from web.logs import configure_logging
    from web.witness.app import create_witness_app

    if not logs and not print_key:
        raise click.UsageError("give the key of at least one log to witness with --log")
    config = WitnessConfig(data_dir=data_dir, name=name or f"{socket.gethostname()}/witness", log_keys=logs)
    try:
        app = create_witness_app(config)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except WitnessStateError as exc:
        raise click.ClickException(str(exc)) from exc
    key_text = app.state.witness.verifier_key.text
    if print_key:
        click.echo(key_text)
        return
    configure_logging()
    host, port = listen
    click.echo(f"Witness {config.name} listening on {host} port {port}; its key: {key_text}", err=True)
    uvicorn.run(app, host=host, port=port, log_config=None, server_header=False)

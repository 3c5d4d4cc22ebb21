"""`provenance-api`: the operator's command line (a Flask CLI group).

\b
Examples:
  provenance-api run                        # one process: SQLite + embedded chain + writer
  provenance-api run --port 8080
  PROVENANCE_DATABASE_URL=postgresql+psycopg://app@db/provenance \\
  PROVENANCE_CHAIN_URL=http://node:8545 provenance-api db upgrade
  provenance-api serve --workers 2          # the API under gunicorn (production)
  provenance-api worker                     # the chain writer alone (production)
  provenance-api chain deploy && provenance-api chain status --json
  provenance-api chain operators grant 0x... --admin-key-file /media/usb/admin.key
  provenance-api org create "Acme Farms" --kind supplier --json
  provenance-api operator create "Ops team"   # staff: may create organizations via the API
  provenance-api writes list --failed && provenance-api writes retry 42
  provenance-api wallets fund 7 --ether 0.5 && provenance-api wallets balance 7
  provenance-api trades sweep --json        # settle expired trades now (run/worker do it too)
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from flask import Flask
from flask.cli import FlaskGroup, NoAppException, with_appcontext
from pydantic import ValidationError
from sqlmodel import Session

from provenance_api import chain, config, db, outbox
from provenance_api.api.deps import Runtime, runtime
from provenance_api.app import create_app
from provenance_api.keys import KeyBoxError
from provenance_api.models import ChainWritePublic, OrganizationCreate, OrgKind
from provenance_api.services import chain_writes, deployments, operators, organizations, wallets
from provenance_api.services.errors import DomainError
from provenance_api.unit_of_work import SqlUnitOfWork

# What a command can fail with that is the operator's to fix, not a bug: message, exit 1.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    config.ConfigError,
    db.DatabaseError,
    chain.ChainError,
    DomainError,
    KeyBoxError,
)


def _app_factory() -> Flask:
    try:
        return create_app()
    except config.ConfigError as exc:
        # Flask shows a NoAppException as a plain message (also under --help), not a traceback.
        raise NoAppException(str(exc)) from None


class ProvenanceGroup(FlaskGroup):
    """Flask's CLI group, where an operator's mistake ends in a message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NoAppException as exc:
            # Raised by _app_factory for a ConfigError: a configuration error, not a usage one.
            raise click.ClickException(exc.message) from exc
        except EXPECTED_ERRORS as exc:
            raise click.ClickException(getattr(exc, "message", None) or str(exc)) from exc


cli = ProvenanceGroup(
    name="provenance-api",
    create_app=_app_factory,
    help=__doc__,
    set_debug_flag=False,
)


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for inner, item in value.items():
                click.echo(f"  {inner}: {item}")
        else:
            click.echo(f"{key}: {value}")


def ensure_deployed(rt: Runtime) -> dict[str, str]:
    """Deploy the contracts this chain lacks (first start) through the chain writer's outbox."""
    admin = config.admin_address(rt.config)
    writer = rt.new_writer()
    try:
        return deployments.ensure_deployed(rt.engine, rt.w3, rt.operator, writer.tick, admin=admin)
    finally:
        writer.release()


def fund_operator(rt: Runtime) -> None:
    """On the embedded chain or anvil, top up the operator so that it can pay for gas."""
    warning = deployments.fund_if_low(rt.w3, rt.operator.address, int(rt.config["DEV_FUND_WEI"]))
    if warning:
        click.echo(f"warning: operator {warning}", err=True)


def prepare_run() -> Flask:
    """`run`'s first step: check the settings, make DATA_DIR and missing secrets, build the app.

    Every setting is checked before anything is written; the app reads the secrets from
    disk, so processes starting together end up with the same ones.
    """
    settings = config.build()
    data_dir = Path(settings["DATA_DIR"])
    config.ensure_data_dir(data_dir)
    if config.missing_secrets(settings):
        path, created = config.ensure_secrets(data_dir)
        if created:
            click.echo(f"generated secrets (mode 0600) in {path}")
    return create_app()


@cli.command("run", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port."
)
def run_command(host: str, port: int) -> None:
    """Run everything in one process: migrate, chain, contracts, writer thread, HTTP server.

    \b
    Example:
      PROVENANCE_DATA_DIR=/var/lib/provenance provenance-api run --port 8000
    """
    from werkzeug.serving import make_server

    app = prepare_run()
    data_dir = Path(app.config["DATA_DIR"])
    rt: Runtime = app.extensions["provenance"]
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    try:
        click.echo(f"data directory: {data_dir}")
        db.upgrade(app.config["DATABASE_URL"])
        click.echo(f"database: {db.safe_url(app.config['DATABASE_URL'])} (migrated)")
        status = chain.chain_status(rt.w3)
        kind = "embedded" if status["embedded"] else app.config["CHAIN_URL"]
        click.echo(f"chain: {kind}, chain id {status['chain_id']}, block {status['block']}")
        fund_operator(rt)
        for name, address in ensure_deployed(rt).items():
            click.echo(f"contract {name}: {address}")
        rt.start_writer()
        click.echo(f"chain writer: {rt.operator.address}")
        rt.start_anchorer()
        click.echo("anchoring service: started")
        _start_sweeper(rt)
    except BaseException:
        server.server_close()
        rt.close()
        raise

    def _shutdown(signum: int, _frame: Any) -> None:
        # shutdown() waits for serve_forever to return, so it must run off this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _shutdown)
    click.echo(f"serving on http://{host}:{server.server_port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        rt.close()
        click.echo("stopped")


@cli.command("serve", with_appcontext=False)
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="HOST:PORT to listen on.")
@click.option(
    "--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Processes."
)
def serve_command(bind: str, workers: int) -> None:
    """Serve the API under gunicorn (production), next to `provenance-api worker`.

    The settings, secrets and database are checked once before any worker starts, so a
    mistake is one message and exit status 1.

    \b
    Example:
      PROVENANCE_DATABASE_URL=postgresql+psycopg://app@db/provenance \\
      PROVENANCE_CHAIN_URL=http://node:8545 provenance-api serve --bind 0.0.0.0:8000 --workers 4
    """
    settings = config.build()
    config.require_secrets(settings)
    if not settings["CHAIN_URL"]:
        _fail(
            "the embedded chain lives inside one process: use `provenance-api run`, or set "
            "PROVENANCE_CHAIN_URL to a JSON-RPC node"
        )
    engine = db.make_engine(settings["DATABASE_URL"])
    try:
        db.check_schema(engine)
    finally:
        engine.dispose()
    from provenance_api.server import serve  # gunicorn: only the server needs it

    serve(bind, workers)


@cli.command("worker")
@click.option("--once", is_flag=True, help="Do one pass and exit (for cron or tests).")
def worker_command(once: bool) -> None:
    """Run the chain writers (OPERATOR_KEY's and custodial organizations'), the anchoring
    service and the trade sweeper until interrupted.

    \b
    Example:
      PROVENANCE_DATABASE_URL=postgresql+psycopg://app@db/provenance \\
      PROVENANCE_CHAIN_URL=http://node:8545 provenance-api worker
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    rt = runtime()
    db.check_schema(rt.engine)
    writer = rt.new_writer()
    click.echo(f"chain writer for {writer.sender} on chain {writer.chain_id}")
    if once:
        rt.new_anchorer().tick()
        if float(rt.config["TRADE_SWEEP_SECONDS"]):
            rt.new_sweeper().tick()
        writer.tick()
        writer.release()
        custodial = rt.new_custodial_writers()
        custodial.tick()
        custodial.release()
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rt.start_anchorer()
    _start_sweeper(rt)
    rt.start_custodial_writers()
    try:
        writer.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        rt.close()


def _start_sweeper(rt: Runtime) -> None:
    every = float(rt.config["TRADE_SWEEP_SECONDS"])
    if rt.start_sweeper() is None:
        click.echo("trade sweeper: off (PROVENANCE_TRADE_SWEEP_SECONDS is 0)")
    else:
        click.echo(f"trade sweeper: every {every:g} s")


@cli.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade", with_appcontext=False)
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations to DATABASE_URL.

    \b
    Example:
      PROVENANCE_DATABASE_URL=postgresql+psycopg://app@db/provenance provenance-api db upgrade
    """
    settings = config.build()
    db.upgrade(settings["DATABASE_URL"], revision)
    click.echo(f"{db.safe_url(settings['DATABASE_URL'])} is at revision {revision}")


@cli.group("chain")
def chain_group() -> None:
    """Chain commands."""


@chain_group.command("deploy")
@with_appcontext
def chain_deploy() -> None:
    """Deploy the contracts this chain lacks and remember their addresses.

    \b
    Example:
      PROVENANCE_CHAIN_URL=http://127.0.0.1:8545 provenance-api chain deploy
    """
    rt = runtime()
    db.check_schema(rt.engine)
    fund_operator(rt)
    for name, address in ensure_deployed(rt).items():
        click.echo(f"{name}: {address}")


@chain_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def chain_status_command(as_json: bool) -> None:
    """Show chain id, head block and the known contract addresses.

    \b
    Example:
      provenance-api chain status --json
    """
    rt = runtime()
    status = chain.chain_status(rt.w3)
    db.check_schema(rt.engine)
    with Session(rt.engine) as session:  # a read: it need not wait for SQLite's write lock
        status["contracts"] = deployments.known_addresses(session, status["chain_id"])
    status["operator"] = rt.operator.address
    _emit(status, as_json)


@chain_group.group("operators")
def operators_group() -> None:
    """Who may sign chain writes: the admin grants and revokes the operator role."""


def _admin_account(rt: Runtime, key_file: Path | None) -> LocalAccount:
    """The admin's key: from `key_file`, else ADMIN_KEY; it must match ADMIN_ADDRESS if set."""
    if key_file is not None:
        try:
            text = key_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read the admin key file {key_file}: {exc}")
        account = config.account_from_key(text, f"the admin key file {key_file}")
    elif rt.config.get("ADMIN_KEY"):
        account = config.account_from_key(rt.config["ADMIN_KEY"], "PROVENANCE_ADMIN_KEY")
    else:
        _fail(
            "no admin key: pass --admin-key-file FILE or set PROVENANCE_ADMIN_KEY "
            "(PROVENANCE_ADMIN_ADDRESS names the admin but cannot sign)"
        )
    expected = rt.config.get("ADMIN_ADDRESS")
    if expected and account.address.lower() != str(expected).lower():
        _fail(f"the admin key is for {account.address}, but PROVENANCE_ADMIN_ADDRESS is {expected}")
    return account


def _change_operator(address: str, key_file: Path | None, as_json: bool, grant: bool) -> None:
    rt = runtime()
    db.check_schema(rt.engine)
    admin = _admin_account(rt, key_file)
    if rt.w3.eth.get_balance(admin.address) == 0:
        try:
            chain.fund_for_development(rt.w3, admin.address, 10**18)
        except chain.NotADevelopmentChain:
            _fail(f"the admin {admin.address} has no coin for gas on this chain: fund it first")
    contracts = operators.set_operator(rt.engine, rt.w3, admin, address, grant=grant)
    if as_json:
        action = "granted" if grant else "revoked"
        account = to_checksum_address(address)  # the service has checked it is an address
        _emit({"account": account, "operator_role": action, "contracts": contracts}, True)
        return
    for name, entry in contracts.items():
        if entry["transaction"] is None:
            state = "already an operator" if grant else "was not an operator"
            click.echo(f"{name} {entry['address']}: {address} {state}")
        else:
            verb = "granted to" if grant else "revoked from"
            click.echo(
                f"{name} {entry['address']}: operator role {verb} {address} "
                f"in {entry['transaction']}"
            )


_ADMIN_KEY_FILE = click.option(
    "--admin-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the admin's hex private key (default: PROVENANCE_ADMIN_KEY).",
)


@operators_group.command("grant")
@click.argument("address")
@_ADMIN_KEY_FILE
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def operators_grant(address: str, admin_key_file: Path | None, as_json: bool) -> None:
    """Let ADDRESS sign chain writes (OPERATOR_ROLE on every contract), signed by the admin.

    \b
    Example:
      provenance-api chain operators grant 0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF \\
        --admin-key-file /media/usb/admin.key
    """
    _change_operator(address, admin_key_file, as_json, grant=True)


@operators_group.command("revoke")
@click.argument("address")
@_ADMIN_KEY_FILE
@click.option("--force", is_flag=True, help="Also when ADDRESS is this service's OPERATOR_KEY.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def operators_revoke(address: str, admin_key_file: Path | None, force: bool, as_json: bool) -> None:
    """Stop ADDRESS from signing chain writes (revoke OPERATOR_ROLE), signed by the admin.

    \b
    Example:
      PROVENANCE_ADMIN_KEY=0x... provenance-api chain operators revoke 0x2B5A...D6cF
    """
    rt = runtime()
    if not force and address.lower() == rt.operator.address.lower():
        _fail(
            f"{address} is this service's own OPERATOR_KEY: every write it owes would revert. "
            "Grant a new operator and switch OPERATOR_KEY first, or pass --force"
        )
    _change_operator(address, admin_key_file, as_json, grant=False)


@cli.group("org")
def org_group() -> None:
    """Organizations."""


@org_group.command("create")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice([k.value for k in OrgKind]),
    required=True,
    help="Role in the chain of custody.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def org_create(name: str, kind: str, as_json: bool) -> None:
    """Create an organization with a new key (encrypted at rest); print its API key once.

    \b
    Example:
      provenance-api org create "Acme Farms" --kind supplier --json
    """
    rt = runtime()
    db.check_schema(rt.engine)
    try:
        data = OrganizationCreate(name=name, kind=OrgKind(kind))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        _fail(f"invalid organization: {problems}")
    created = organizations.create_organization(SqlUnitOfWork(rt.engine), rt.keybox, data)
    shown = created.organization.model_dump(mode="json")
    shown["api_key"] = created.api_key
    _emit(shown, as_json)
    if not as_json:
        click.echo("store the API key now: it is not shown again", err=True)


@cli.group("operator")
def operator_group() -> None:
    """The service's own staff (the operator role of the API)."""


@operator_group.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def operator_create(name: str, as_json: bool) -> None:
    """Create a staff account that may create and list organizations; print its API key once.

    \b
    Example:
      provenance-api operator create "Ops team" --json
    """
    rt = runtime()
    db.check_schema(rt.engine)
    created = organizations.create_operator(SqlUnitOfWork(rt.engine), name)
    shown = created.operator.model_dump(mode="json")
    shown["api_key"] = created.api_key
    _emit(shown, as_json)
    if not as_json:
        click.echo("store the API key now: it is not shown again", err=True)


@cli.group("writes")
def writes_group() -> None:
    """The chain writer's outbox: owed writes, failed ones, retries."""


def _write_view(row: Any) -> dict[str, Any]:
    return ChainWritePublic.model_validate(row, from_attributes=True).model_dump(mode="json")


@writes_group.command("list")
@click.option("--failed", is_flag=True, help="Only failed writes not retried yet.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def writes_list(failed: bool, limit: int, as_json: bool) -> None:
    """List chain writes, newest first.

    \b
    Example:
      provenance-api writes list --failed --json
    """
    rt = runtime()
    db.check_schema(rt.engine)
    with db.session_scope(rt.engine) as session:
        rows = chain_writes.list_writes(session, failed=failed, limit=limit)
        shown = [_write_view(row) for row in rows]
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    if not shown:
        click.echo("no failed writes" if failed else "no writes")
        return
    for item in shown:
        call = f"{item['contract']}.{item['function']}"
        if item["contract"] == outbox.COIN:  # a plain payment calls no contract
            call = f"pay {item['value']} wei to {item['args'][0] if item['args'] else '?'}"
        elif item["value"]:
            call += f" with {item['value']} wei"
        nonce = "-" if item["nonce"] is None else item["nonce"]
        line = f"{item['id']:>6}  {item['status']:<9}  nonce {nonce:<6}  {call}"
        if item["error"]:
            line += f"  ({item['error']})"
        click.echo(line)


@writes_group.command("retry")
@click.argument("write_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def writes_retry(write_id: int, as_json: bool) -> None:
    """Owe a failed write again, as a new write (retrying the same ID twice is one retry).

    \b
    Example:
      provenance-api writes retry 42
    """
    rt = runtime()
    db.check_schema(rt.engine)
    with db.session_scope(rt.engine) as session:
        row = chain_writes.retry_write(session, write_id)
        shown = _write_view(row)
    if as_json:
        click.echo(json.dumps(shown, indent=2))
    else:
        click.echo(f"write {write_id} owed again as write {shown['id']} ({shown['status']})")


@cli.group("trades")
def trades_group() -> None:
    """Trades in TradeEscrow."""


@trades_group.command("sweep")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def trades_sweep(as_json: bool) -> None:
    """Refresh the live trades from the chain once and owe the timeout of every expired one.

    What `run` and `worker` do every PROVENANCE_TRADE_SWEEP_SECONDS; the owed timeouts are
    then sent by the running chain writer.

    \b
    Example:
      provenance-api trades sweep --json
    """
    rt = runtime()
    db.check_schema(rt.engine)
    sweeper = rt.new_sweeper()
    if sweeper.escrow() is None:
        _fail("TradeEscrow is not deployed on this chain: run `provenance-api chain deploy`")
    shown = sweeper.tick().as_json()
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    click.echo(
        f"refreshed {shown['refreshed']} trade(s): {shown['settled']} settled, "
        f"{shown['timeouts_owed']} timeout(s) owed, {shown['timeouts_failed']} failed timeout(s) "
        "to retry (`provenance-api writes list --failed`)"
    )
    for trade_id, reason in shown["errors"].items():
        click.echo(f"trade {trade_id} skipped: {reason}", err=True)


@cli.group("wallets")
def wallets_group() -> None:
    """Organizations' wallets: the coin a custodial organization pays gas and deposits with."""


@wallets_group.command("fund")
@click.argument("organization_id", metavar="ORG_ID", type=int)
@click.option("--ether", help="Amount in ether (decimal, e.g. 0.25).")
@click.option("--wei", help="Amount in wei (a whole number).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def wallets_fund(organization_id: int, ether: str | None, wei: str | None, as_json: bool) -> None:
    """Owe a payment from the operator to an organization; the chain writer sends it.

    Each call is a new payment. The running `provenance-api run` (or `worker`) mines it.

    \b
    Example:
      provenance-api wallets fund 7 --ether 0.5 --json
    """
    amount = wallets.parse_amount(ether=ether, wei=wei)
    rt = runtime()
    db.check_schema(rt.engine)
    with db.session_scope(rt.engine) as session:
        row = wallets.fund_organization(
            session, organization_id, amount, operator=rt.operator.address
        )
        shown = {
            "organization_id": organization_id,
            "to": row.args[0],
            "wei": str(amount),
            "ether": wallets.ether_text(amount),
            "write": _write_view(row),
        }
    if as_json:
        click.echo(json.dumps(shown, indent=2))
    else:
        click.echo(
            f"owed write {shown['write']['id']}: {shown['ether']} ether from the operator to "
            f"organization {organization_id} ({shown['to']})"
        )


@wallets_group.command("balance")
@click.argument("organization_id", metavar="ORG_ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_appcontext
def wallets_balance(organization_id: int, as_json: bool) -> None:
    """Show an organization's address and the coin it holds on the chain.

    \b
    Example:
      provenance-api wallets balance 7 --json
    """
    rt = runtime()
    db.check_schema(rt.engine)
    with Session(rt.engine) as session:
        found = wallets.wallet(session, organization_id, rt.w3.eth.get_balance)
    _emit(found.as_json(), as_json)


def main(argv: list[str] | None = None) -> None:
    """Run the `provenance-api` command line (the console script starts in __main__.main)."""
    cli.main(args=argv, prog_name="provenance-api")

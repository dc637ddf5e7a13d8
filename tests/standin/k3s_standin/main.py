"""Top-level CLI of the stand-in: `k3s [--version|-v] server|agent|kubectl|crictl|ctr|...`."""
from __future__ import annotations

import os
import sys

from . import cli, util

COMMANDS = ("server", "agent", "kubectl", "crictl", "ctr", "check-config", "token", "etcd-snapshot",
            "secrets-encrypt", "certificate", "completion", "help")

ROOT_HELP = """NAME:
   {prog} - Kubernetes, but small and simple

USAGE:
   {prog} [global options] command [command options] [arguments...]

VERSION:
   {version}

COMMANDS:
   server         Run management server
   agent          Run node agent
   kubectl        Run kubectl
   crictl         Run crictl
   ctr            Run ctr
   check-config   Run config check
   token          Manage bootstrap tokens
   etcd-snapshot
   secrets-encrypt  Control secrets encryption and keys rotation
   certificate    Manage K3s certificates
   completion     Install shell completion script
   help, h        Shows a list of commands or help for one command

GLOBAL OPTIONS:
   --debug                     (logging) Turn on debug logs [$K3S_DEBUG]
   --data-dir value, -d value  (data) Folder to hold state default /var/lib/rancher/k3s or ${{HOME}}/.rancher/k3s if not root [$K3S_DATA_DIR]
   --help, -h                  show help
   --version, -v               print the version
"""


def _data_dir(args: list[str]) -> str:
    d = os.environ.get("K3S_DATA_DIR") or "/var/lib/rancher/k3s"
    for i, a in enumerate(args):
        if a in ("-d", "--data-dir") and i + 1 < len(args):
            d = args[i + 1]
        elif a.startswith(("--data-dir=", "-d=")):
            d = a.split("=", 1)[1]
    return d


def version_text(prog: str) -> str:
    return f"{prog} version {util.VERSION} ({util.COMMIT[:8]})\ngo version {util.GO_VERSION}\n"


def main(argv: list[str]) -> int:
    prog = os.path.basename(argv[0]) if argv else "k3s"
    args = list(argv[1:])
    if prog in ("kubectl", "crictl", "ctr"):
        return run_tool(prog, args)
    prog = "k3s" if prog.startswith(("k3s", "python", "__main__")) or not prog else prog
    # global options before the command
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a in ("--version", "-v"):
            sys.stdout.write(version_text(prog))
            return 0
        if a in ("--help", "-h"):
            sys.stdout.write(ROOT_HELP.format(prog=prog, version=f"{util.VERSION} ({util.COMMIT[:8]})"))
            return 0
        if a == "--debug":
            util.set_debug(True)
            continue
        if a in ("-d", "--data-dir") and args:
            os.environ["K3S_DATA_DIR"] = args.pop(0)
            continue
        if a.startswith(("--data-dir=", "-d=")):
            os.environ["K3S_DATA_DIR"] = a.split("=", 1)[1]
            continue
        bad = "-" + a.lstrip("-").split("=")[0]
        sys.stdout.write(f"Incorrect Usage. flag provided but not defined: {bad}\n\n")
        sys.stdout.write(ROOT_HELP.format(prog=prog, version=f"{util.VERSION} ({util.COMMIT[:8]})"))
        util.log("fatal", f"flag provided but not defined: {bad}")
        return 1
    if not args:
        sys.stdout.write(ROOT_HELP.format(prog=prog, version=f"{util.VERSION} ({util.COMMIT[:8]})"))
        return 0
    cmd, rest = args[0], args[1:]
    if cmd in ("kubectl", "crictl", "ctr"):
        return run_tool(cmd, rest)
    if cmd in ("server", "agent"):
        return run_daemon(cmd, rest)
    if cmd in ("help", "h"):
        sys.stdout.write(ROOT_HELP.format(prog=prog, version=f"{util.VERSION} ({util.COMMIT[:8]})"))
        return 0
    if cmd == "etcd-snapshot":
        from . import snapshot

        return snapshot.main(rest)
    if cmd in COMMANDS:
        sys.stderr.write(f"{prog} {cmd}: not modelled by the k3s stand-in\n")
        return 1
    # urfave/cli v1: unknown command -> "No help topic for '<cmd>'", exit 3
    sys.stderr.write(f"No help topic for '{cmd}'\n")
    return 3


def run_tool(tool: str, args: list[str]) -> int:
    if tool == "kubectl":
        from . import kubectl

        return kubectl.main(args)
    from . import images

    data_dir = _data_dir([])
    if tool == "crictl":
        return images.crictl(args, data_dir)
    return images.ctr(args, data_dir)


def run_daemon(cmd: str, args: list[str]) -> int:
    table = cli.SERVER_FLAGS if cmd == "server" else cli.AGENT_FLAGS
    try:
        opts, positional, info = cli.resolve(table, args, server=(cmd == "server"))
    except cli.UsageError as exc:
        if str(exc) == "help requested":
            sys.stdout.write(cli.usage_text(cmd, table))
            return 0
        sys.stdout.write(f"Incorrect Usage: {exc}\n\n")
        sys.stdout.write(cli.usage_text(cmd, table))
        util.log("fatal", str(exc))
        return 1
    except Exception as exc:  # config parse errors
        from .config import ConfigError

        if isinstance(exc, ConfigError):
            util.log("fatal", str(exc))
            return 1
        raise
    if positional:
        util.log("fatal", f"Error: unexpected argument(s) {' '.join(positional)}")
        return 1
    util.set_debug(bool(opts.get("debug")))
    opts["_cmd"] = cmd
    opts["_explicit"] = info["explicit"]
    if os.environ.get("K3S_DATA_DIR") and "data-dir" not in info["explicit"]:
        opts["data-dir"] = os.environ["K3S_DATA_DIR"]
    for f in info["files"]:
        util.debug(f"Loaded config file {f}")
    if cmd == "server":
        from .server import run_server

        return run_server(opts)
    from .agent import run_agent

    return run_agent(opts)

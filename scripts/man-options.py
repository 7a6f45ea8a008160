#!/usr/bin/python3
"""scripts/man-options.py — keeps the OPTIONS section of docs/man/anvil.8.md equal to
`anvil --help`, so the man page lists every setting (server/config.c's one table drives
--help, so a new setting reaches the man page by running this).

    scripts/man-options.py build/anvil            rewrite the section in place
    scripts/man-options.py --check build/anvil    exit 1 (and say why) if it is out of date

The section runs from the line `# OPTIONS` to the next `# ` heading; nothing else in the
page is touched."""
import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "man" / "anvil.8.md"

INTRO = """Every setting can be given three ways: as a flag (**--data-dir** *DIR* or
**--data-dir=***DIR*), as an environment variable (**ANVIL_DATA_DIR**), or as a line of the
config file (`data_dir = DIR`). Flags override the environment, which overrides the file,
which overrides the defaults. The repeatable settings (**--token**, **--sqs-key**) take
several values, one per flag or file line, or separated by spaces in their variable."""

# "  -c, --config FILE   text", "      --host ADDR   text", "      --push-...-concurrency N text"
OPTION = re.compile(r"^\s+((?:-\w, )?--[\w-]+)(?: ([^\s]+))?\s+(.*)$")
ENV = re.compile(r"^\s+env (\w+)(?:, default (.*))?$")


def md_escape(text):
    """Help text is plain: make markdown take it literally."""
    return re.sub(r"([\\`*_\[\]<>])", r"\\\1", text)


def parse_help(text):
    """[{flags, arg, help, env, default}] in --help's order."""
    options = []
    for line in text.splitlines():
        if not line.startswith(" "):
            continue
        env = ENV.match(line)
        if env and options:
            options[-1]["env"], options[-1]["default"] = env.group(1), env.group(2)
            continue
        opt = OPTION.match(line)
        if opt:
            options.append({"flags": opt.group(1), "arg": opt.group(2), "help": opt.group(3),
                            "env": None, "default": None})
        elif options and line.strip():  # a help text that runs on
            options[-1]["help"] += " " + line.strip()
    return options


def render_option(o):
    flags = ", ".join("**%s**" % f for f in o["flags"].split(", "))
    head = flags + (" *%s*" % md_escape(o["arg"]) if o["arg"] else "")
    text = md_escape(o["help"]).rstrip(".") + "."
    lines = [head, ":   " + text + ("  " if o["env"] else "")]  # then a line break
    if o["env"]:
        key = o["flags"].split("--")[-1].replace("-", "_")
        where = "Config file: `%s`; environment: **%s**" % (key, md_escape(o["env"]))
        if o["default"]:
            where += "; default: `%s`" % o["default"]
        lines.append("    " + where + ".")
    return "\n".join(lines)


def render_section(help_text):
    options = parse_help(help_text)
    if not options:
        sys.exit("man-options: no options found in --help output")
    body = "\n\n".join(render_option(o) for o in options)
    return "# OPTIONS\n" + INTRO + "\n\n" + body + "\n\n"


def replace_section(page, section):
    start = page.index("\n# OPTIONS\n") + 1
    nxt = re.search(r"^# ", page[start + 1:], re.M)
    end = start + 1 + nxt.start() if nxt else len(page)
    return page[:start] + section + page[end:]


def main(argv):
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if len(args) != 1:
        sys.exit(__doc__)
    help_text = subprocess.run([args[0], "--help"], capture_output=True, text=True,
                               check=True).stdout
    page = PAGE.read_text()
    updated = replace_section(page, render_section(help_text))
    if not check:
        PAGE.write_text(updated)
        return 0
    if updated != page:
        print("docs/man/anvil.8.md: OPTIONS differs from `%s --help`; run "
              "scripts/man-options.py %s" % (args[0], args[0]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

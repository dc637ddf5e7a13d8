"""Every module returns its result to main(): exit_json and fail_json are called in a module's
main() only (community.docker / kubernetes.core shape), so that a manager never ends the process
from deep inside and can be tested by what it returns."""
import ast
import os

import pytest

MODULES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules")
EXITS = {"exit_json", "fail_json"}


def exits_outside_main(source):
    """(line, function, call) of each exit_json/fail_json call not lexically inside main()."""
    found = []

    def visit(node, where):
        for child in ast.iter_child_nodes(node):
            inner = where
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                inner = where + [getattr(child, "name", "<lambda>")]
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr in EXITS:
                if where != ["main"]:
                    found.append((child.lineno, ".".join(where) or "<module>", child.func.attr))
            visit(child, inner)

    visit(ast.parse(source), [])
    return found


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(MODULES) if f.endswith(".py")))
def test_exit_and_fail_only_in_main(name):
    with open(os.path.join(MODULES, name), encoding="utf-8") as f:
        assert exits_outside_main(f.read()) == []


def test_the_check_finds_an_exit_in_a_manager():
    source = ("class M:\n    def run(self):\n        self.module.exit_json(changed=False)\n"
              "def helper(module):\n    module.fail_json(msg='x')\n"
              "def main():\n    module.exit_json(**M().run())\n")
    assert exits_outside_main(source) == [(3, "M.run", "exit_json"), (5, "helper", "fail_json")]

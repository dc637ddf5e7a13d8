"""plugins/plugin_utils/controller_module.py: where the task's host is the controller, a module runs
in Ansible's own process with its own argument spec and code, and returns what the module returns
when Ansible runs it; anywhere else (another connection, become, a task environment) the module is
executed as any module."""
from types import SimpleNamespace

import pytest

from ansible_collections.seal.cluster.plugins.action.cluster_image import ActionModule as ClusterImageAction
from ansible_collections.seal.cluster.plugins.action.registry_certs import ActionModule as RegistryCertsAction

SECRET = "s3cret-registry-password"


def make(cls, args, transport="local", become=False, check=False, diff=False, environment=None):
    task = SimpleNamespace(args=dict(args), async_val=0, check_mode=check, diff=diff, environment=environment or [{}],
                           action="seal.cluster." + cls.RUN.__module__.rsplit(".", 1)[1])
    connection = SimpleNamespace(transport=transport, has_native_async=False, _shell=SimpleNamespace(tmpdir="/nowhere"))
    action = cls(task, connection, SimpleNamespace(become=become), None, None, None)
    action.executed = []

    def execute_module(task_vars, wrap_async):
        action.executed.append(task.args)
        return {"changed": False, "executed": True}

    action._execute_module = execute_module
    action._remove_tmp_path = lambda path: None
    return action


def certs_args(tmp_path, **extra):
    return dict({"path": str(tmp_path / "registry"), "cluster": "c1", "username": "seal", "password": SECRET}, **extra)


def test_on_the_controller_the_module_runs_in_process_as_the_module_would(tmp_path, run_module):
    args = certs_args(tmp_path)
    result = make(RegistryCertsAction, args, check=True).run(task_vars={})
    expected = run_module("registry_certs", check=True, **args)
    assert result["changed"] is True and not (tmp_path / "registry").exists()  # check mode wrote nothing
    assert sorted(result) == sorted(k for k in expected if k != "invocation")
    result = make(RegistryCertsAction, args).run(task_vars={})
    assert result["changed"] is True and (tmp_path / "registry" / "ca.crt").is_file()
    assert make(RegistryCertsAction, args).run(task_vars={})["changed"] is False
    assert run_module("registry_certs", **args)["changed"] is False  # the module reads the same files the same way


def test_no_log_values_never_appear_in_the_result(tmp_path):
    result = make(RegistryCertsAction, certs_args(tmp_path)).run(task_vars={})
    assert SECRET not in repr(result)


@pytest.mark.parametrize("args, message", [
    ({"name": "k3s:v1", "bogus": 1}, "Unsupported parameters for (seal.cluster.cluster_image) module: bogus."),
    ({"name": "k3s:v1", "state": "nope"}, "value of state must be one of: present, built, pushed, absent, archived, loaded, got: nope"),
    ({"name": "k3s:v1", "path": "/x", "k3s_release": {"path": "/y", "version": "v1"}}, "parameters are mutually exclusive: path|k3s_release"),
])
def test_bad_arguments_fail_as_the_module_fails(args, message, run_module):
    result = make(ClusterImageAction, args).run(task_vars={})
    assert result["failed"] is True and result["msg"].startswith(message), result["msg"]
    # the module says the same (it names itself basic.py when run outside Ansible)
    assert run_module("cluster_image", **args)["msg"] == result["msg"].replace("seal.cluster.cluster_image", "basic.py")


def test_a_manager_failure_is_a_failed_result_with_its_details(tmp_path):
    result = make(ClusterImageAction, {"name": "k3s:v9.9.9", "store": str(tmp_path / "store"), "pull": "never"}).run(task_vars={})
    assert result["failed"] is True and "is not in the store" in result["msg"] and result["changed"] is False


@pytest.mark.parametrize("where", [dict(transport="ssh"), dict(become=True), dict(environment=[{"HTTPS_PROXY": "x"}])])
def test_elsewhere_the_module_is_executed(tmp_path, where):
    action = make(RegistryCertsAction, certs_args(tmp_path), **where)
    assert action.run(task_vars={}) == {"changed": False, "executed": True}
    assert action.executed and not (tmp_path / "registry").exists()

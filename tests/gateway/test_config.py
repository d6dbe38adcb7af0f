from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config

EXAMPLE = Path(__file__).parents[2] / "docs" / "branchd.example.toml"
MINIMAL = {"branch": {"id": "B1", "region": "652300"}}


def problems_of(data: dict[str, object], environ: dict[str, str] | None = None) -> list[str]:
    """The problems ``parse_config`` reports for ``data``."""
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ=environ or {})
    return info.value.problems


def test_documented_example_is_valid(tmp_path: Path) -> None:
    """docs/branchd.example.toml loads as it is shipped (with its secrets provided)."""
    master = tmp_path / "master.key"
    master.write_text("00" * 32, encoding="ascii")
    master.chmod(0o600)
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "/etc/branchd/secrets/master.key", str(master)
    )
    copy = tmp_path / "branchd.toml"
    copy.write_text(text, encoding="utf-8")
    config = load_config(copy, environ={"BRANCHD_KIOSK01_TOKEN": "k" * 40})
    assert [t.role for t in config.terminals] == ["teller", "supervisor", "kiosk"]
    assert config.branch.region == "652300"
    assert config.database_url == "sqlite+aiosqlite:////var/lib/branchd/branchd.db"


def test_defaults_fill_everything_but_the_branch() -> None:
    """Only the branch section is required."""
    config = parse_config(MINIMAL, environ={})
    assert config.server.port == 8080
    assert config.logging.format == "auto"


def test_every_problem_reported_at_once() -> None:
    """Each bad key is named with its value and what is expected, all in one error."""
    problems = problems_of(
        {"branch": {"id": "has space", "region": "65"}, "server": {"port": 70000, "colour": 1}}
    )
    assert len(problems) == 4
    joined = "\n".join(problems)
    assert "branch.id:" in joined
    assert "'has space'" in joined
    assert "branch.region: String should match pattern '^\\d{6}$' (got '65')" in joined
    assert "server.port: Input should be less than or equal to 65535 (got 70000)" in joined
    expected = (
        "unknown key (expected one of: allow_plain_http, host, ops_token, port, "
        "shutdown_timeout, tls)"
    )
    assert f"server.colour: {expected}" in joined


def test_missing_section_named() -> None:
    """A missing required section says so."""
    assert problems_of({}) == ["branch: required key is missing"]


def test_secret_from_environment() -> None:
    """A secret can be read from a named environment variable."""
    url = "postgresql+asyncpg://u:pw@db/branchd"
    config = parse_config(
        {**MINIMAL, "database": {"url": {"env": "DB_URL"}}}, environ={"DB_URL": url}
    )
    assert config.database_url == url
    assert "pw" not in repr(config)


def test_secret_from_file(tmp_path: Path) -> None:
    """A secret can be read from a file; the trailing newline is dropped."""
    secret = tmp_path / "db-url"
    secret.write_text("postgresql+asyncpg://u:pw@db/branchd\n", encoding="utf-8")
    secret.chmod(0o600)
    config = parse_config({**MINIMAL, "database": {"url": {"file": str(secret)}}}, environ={})
    assert config.database_url == "postgresql+asyncpg://u:pw@db/branchd"


def test_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    """A secret file readable by group or others is refused, naming its mode."""
    secret = tmp_path / "master.key"
    secret.write_text("00" * 32, encoding="utf-8")
    secret.chmod(0o644)
    [problem] = problems_of(
        {**MINIMAL, "keystore": {"master_key": {"file": str(secret)}}}, environ={}
    )
    assert "keystore.master_key: secret file" in problem
    assert "(mode 0644); make it 0600 or 0400" in problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"env": "NOT_SET"}, "environment variable NOT_SET is not set"),
        ({"file": "/nonexistent/secret"}, "cannot read secret file /nonexistent/secret"),
        ({"vault": "x"}, 'expected a string, { env = "NAME" } or { file = "/path" }'),
        ("mysql://u:topsecret@db/x", "scheme 'mysql' is not supported"),
    ],
)
def test_secret_problems_never_echo_the_value(value: object, expected: str) -> None:
    """Errors on secret keys explain the problem but never print the value."""
    [problem] = problems_of({**MINIMAL, "database": {"url": value}})
    assert problem.startswith("database.url: ")
    assert expected in problem
    assert "topsecret" not in problem
    assert "value not shown" in problem


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    """A TOML syntax error gives its line and column."""
    path = tmp_path / "branchd.toml"
    path.write_text('[branch]\nid = "B1\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2"):
        load_config(path)


def test_unreadable_file(tmp_path: Path) -> None:
    """A missing file is a configuration error, not a traceback."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.toml")


def test_relative_data_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    """data_dir = "state" in /x/branchd.toml means /x/state, wherever branchd is started."""
    path = tmp_path / "branchd.toml"
    path.write_text('data_dir = "state"\n[branch]\nid = "B1"\nregion = "652300"\n', "utf-8")
    config = load_config(path, environ={})
    assert config.data_dir == tmp_path.resolve() / "state"
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/state/branchd.db"


def test_terminal_token_problems_never_echo_the_token() -> None:
    """A too-short terminal token is refused without printing it; unknown keys are listed."""
    problems = problems_of(
        {**MINIMAL, "terminals": [{"id": "t1", "role": "teller", "token": "short-secret", "x": 1}]}
    )
    joined = "\n".join(problems)
    assert "terminals.0.token: a terminal token must be at least 32 characters" in joined
    assert "short-secret" not in joined
    assert "terminals.0.x: unknown key (expected one of: certificate_cn, id, role, token)" in joined


def test_terminal_ids_unique() -> None:
    """Two terminals with one id are refused."""
    terminal = {"id": "t1", "role": "teller", "certificate_cn": "t1"}
    [problem] = problems_of({**MINIMAL, "terminals": [terminal, terminal]})
    assert "terminal ids must be unique" in problem


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "branch-pc.local", "::"])  # noqa: S104
def test_teller_api_off_loopback_needs_mutual_tls(host: str) -> None:
    """Plain HTTP (or TLS without client certificates) off loopback is refused, named."""
    problems = problems_of({**MINIMAL, "server": {"host": host}})
    assert any("server" in p and "client certificates" in p for p in problems), problems
    tls = {"cert": "c.pem", "key": "k.pem", "ca": "ca.pem", "require_client_cert": False}
    assert problems_of({**MINIMAL, "server": {"host": host, "tls": tls}})


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_may_serve_plain_http(host: str) -> None:
    """On loopback nothing crosses the network: plain HTTP is fine."""
    config = parse_config({**MINIMAL, "server": {"host": host}})
    assert config.server.loopback
    assert not config.server.plain_on_the_network


def test_plain_http_off_loopback_only_when_allowed() -> None:
    """allow_plain_http is the explicit override; mutual TLS needs none."""
    allowed = parse_config({**MINIMAL, "server": {"host": "0.0.0.0", "allow_plain_http": True}})  # noqa: S104
    assert allowed.server.plain_on_the_network
    tls = {"cert": "c.pem", "key": "k.pem", "ca": "ca.pem"}
    mutual = parse_config({**MINIMAL, "server": {"host": "0.0.0.0", "tls": tls}})  # noqa: S104
    assert not mutual.server.plain_on_the_network

"""Where the client finds the server and its token.

Three sources, strongest first: the ``--url``/``--token`` flags, the ``YUSHAN_URL``/
``YUSHAN_TOKEN`` environment variables, and a YAML config file (``$YUSHAN_CONFIG`` or
``~/.config/yushan/config.yaml``) holding ``url`` and ``token``. Each setting is resolved on its
own, so a token from the environment combines with a URL from the file. ``yushan login`` writes
the file with mode 0600 because it holds a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from cli.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "YUSHAN_URL"
TOKEN_ENV = "YUSHAN_TOKEN"
CONFIG_ENV = "YUSHAN_CONFIG"
CONFIG_KEYS = ("url", "token")


@dataclass(frozen=True)
class ClientConfig:
    url: str
    token: str | None


def config_path(environ: Mapping[str, str]) -> Path:
    explicit = environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return home / ".config" / "yushan" / "config.yaml"


def read_config_file(path: Path) -> dict[str, str]:
    """The file's ``url`` and ``token``; an absent file is an empty config."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping with 'url' and 'token'")
    return {key: str(data[key]) for key in CONFIG_KEYS if data.get(key) is not None}


def resolve_config(
    *,
    flag_url: str | None,
    flag_token: str | None,
    environ: Mapping[str, str],
) -> ClientConfig:
    """Each setting from the strongest source that has it: flag, then environment, then file.

    The file is read only when a flag or variable is missing, so a broken file does not get in
    the way of a fully specified command line.
    """
    url = flag_url or environ.get(URL_ENV)
    token = flag_token or environ.get(TOKEN_ENV)
    if not (url and token):
        from_file = read_config_file(config_path(environ))
        url = url or from_file.get("url")
        token = token or from_file.get("token")
    return ClientConfig(url=(url or DEFAULT_URL).rstrip("/"), token=token)


def write_config_file(path: Path, config: ClientConfig) -> None:
    """Write the file readable by its owner only; it is created 0600, never widened later."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body: dict[str, str] = {"url": config.url}
    if config.token:
        body["token"] = config.token
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        yaml.safe_dump(body, handle, sort_keys=False)

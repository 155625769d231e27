from dataclasses import dataclass
from typing import Literal

import pytest

from flow_core.config import load_toml, parse_set, resolve_config
from flow_core.errors import ConfigError, UsageError


@dataclass(frozen=True)
class Cfg:
    steps: int = 10
    lr: float = 1e-3
    name: str = "cfm"
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    clip: float | None = None
    sizes: tuple[int, ...] = (1, 2)


def test_defaults_file_then_sets_in_order():
    cfg = resolve_config(
        Cfg,
        file_values={"steps": 5, "lr": 1},
        overrides=[
            ("steps", "7"),
            ("flag", "true"),
            ("mode", "b"),
            ("clip", "0.5"),
            ("sizes", "3,4,5"),
            ("name", "ot-cfm"),
        ],
    )
    assert cfg == Cfg(
        steps=7, lr=1.0, name="ot-cfm", flag=True, mode="b", clip=0.5, sizes=(3, 4, 5)
    )
    assert isinstance(cfg.lr, float)
    assert resolve_config(Cfg, overrides=[("clip", "none")]).clip is None


def test_unknown_key_names_valid_keys_and_suggests():
    with pytest.raises(ConfigError) as info:
        resolve_config(Cfg, overrides=[("stpes", "3")], where=" for task 'x.y'")
    message = str(info.value)
    assert "'stpes'" in message and "did you mean 'steps'" in message
    assert "valid keys: steps, lr, name, flag, mode, clip, sizes" in message
    assert isinstance(info.value, UsageError)


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("steps", "ten", "int"),
        ("flag", "maybe", "bool"),
        ("mode", "c", "'a' | 'b'"),
        ("lr", "fast", "float"),
    ],
)
def test_wrong_type_names_expected_type(key, raw, expected):
    with pytest.raises(ConfigError, match=expected):
        resolve_config(Cfg, overrides=[(key, raw)])


def test_file_values_are_type_checked():
    with pytest.raises(ConfigError, match="'steps'.*expected int"):
        resolve_config(Cfg, file_values={"steps": "many"})
    with pytest.raises(ConfigError, match="expected int"):
        resolve_config(Cfg, file_values={"steps": True})
    with pytest.raises(ConfigError, match="unknown key 'bogus' in the config file"):
        resolve_config(Cfg, file_values={"bogus": 1})


def test_parse_set_and_toml(tmp_path):
    assert parse_set("a=b=c") == ("a", "b=c")
    with pytest.raises(ConfigError, match="key=value"):
        parse_set("novalue")
    good = tmp_path / "c.toml"
    good.write_text("steps = 3\nname = 'x'\n")
    assert load_toml(good) == {"steps": 3, "name": "x"}
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = = 3\n")
    with pytest.raises(ConfigError, match="not readable TOML"):
        load_toml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")

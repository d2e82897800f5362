"""gateway-firstboot (the image's first-boot script) on a boot partition in a temporary folder:
settings applied, a stream token made for each card, SSH keys for root, files deleted."""

import importlib.machinery
import importlib.util
import stat
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "ansible/roles/gateway/files/gateway-firstboot"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFirstBootTestKeyFirstBootTestKey0123 admin@lab"


def load_firstboot(root: Path):
    loader = importlib.machinery.SourceFileLoader("gateway_firstboot", str(SCRIPT))
    spec = importlib.util.spec_from_loader("gateway_firstboot", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    (root / "etc/fieldgate").mkdir(parents=True)
    module.ENV_FILE = str(root / "etc/fieldgate/gateway.env")
    module.WEB_PENDING = str(root / "etc/fieldgate/web-provision.json")
    module.ROOT_KEYS = str(root / "root/.ssh/authorized_keys")
    module.WEB_PROVISION = str(root / "no-site-here")
    return module


@pytest.fixture
def card(tmp_path):
    def make(name: str):
        root = tmp_path / name
        boot = root / "boot"
        boot.mkdir(parents=True)
        (boot / "fieldgate.env").write_text(
            f"GATEWAY_ID={name}\nGATEWAY_STREAM_URL=ws://127.0.0.1:8000/ws/ingest/\n"
            "GATEWAY_STREAM_TOKEN=\n"
        )
        (boot / "authorized_keys").write_text(f"# the lab's key\n{KEY}\n")
        return load_firstboot(root), root, boot

    return make


def env_of(root: Path) -> dict[str, str]:
    text = (root / "etc/fieldgate/gateway.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_first_boot_applies_settings_and_keys_and_deletes_them(card):
    firstboot, root, boot = card("card-a")
    assert firstboot.main(str(boot)) == 0
    assert env_of(root)["GATEWAY_ID"] == "card-a"
    keys = root / "root/.ssh/authorized_keys"
    assert keys.read_text() == KEY + "\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert list(boot.iterdir()) == []
    # A key offered again is not added twice.
    (boot / "authorized_keys").write_text(KEY + "\n")
    assert firstboot.main(str(boot)) == 0
    assert keys.read_text() == KEY + "\n"


def test_each_card_makes_its_own_stream_token_for_its_own_site(card):
    tokens = []
    for name in ("card-a", "card-b"):
        firstboot, root, boot = card(name)
        assert firstboot.main(str(boot)) == 0
        tokens.append(env_of(root)["GATEWAY_STREAM_TOKEN"])
    assert all(t.startswith("fgt_") and len(t) > 40 for t in tokens)
    assert tokens[0] != tokens[1]


def test_a_given_token_is_kept(card):
    firstboot, root, boot = card("card-a")
    (boot / "fieldgate.env").write_text(
        "GATEWAY_STREAM_URL=ws://127.0.0.1:8000/ws/ingest/\nGATEWAY_STREAM_TOKEN=fgt_given-0123456789\n"
    )
    assert firstboot.main(str(boot)) == 0
    assert env_of(root)["GATEWAY_STREAM_TOKEN"] == "fgt_given-0123456789"

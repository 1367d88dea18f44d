"""`pull kafka://...?group=A --group B`: --group won without a word, so the pull read (and committed) from another
consumer group's position than the URL said. Two different groups are now refused before anything is opened;
the same group in both places is taken."""
from __future__ import annotations

from wia_security.cli import main


def test_two_different_groups_are_refused_before_anything_is_opened(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["pull", "kafka://127.0.0.1:9/wia-events?group=siem", "--group", "archive",
                 "--to", f"sqlite:///{tmp_path}/s.db"]) == 2
    err = capsys.readouterr().err
    assert "--group 'archive' and the URL's group='siem' differ" in err
    assert not list(tmp_path.iterdir())                    # no store, no dead letter made


def test_the_same_group_twice_is_not_refused_for_that(tmp_path, capsys, monkeypatch):
    """It goes on to open the source (here a port nothing listens on: the refusal is another one)."""
    monkeypatch.chdir(tmp_path)
    main(["pull", "kafka://127.0.0.1:9/wia-events?group=siem", "--group", "siem", "--idle-timeout", "1",
          "--to", f"sqlite:///{tmp_path}/s.db"])
    assert "differ" not in capsys.readouterr().err

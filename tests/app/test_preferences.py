"""Pairwise picks: the Bradley-Terry fit finds the setting a simulated user prefers, and the store keeps picks."""
import json
import math
import random

from squeeze_studio.app.model.preferences import MIN_PICKS, fit_strengths, preferred_setting, setting_of
from squeeze_studio.app.persistence.picks import PickStore

SETTINGS = [(0.95, 0.85, 2.5), (1.0, 0.0, 2.5), (0.85, 0.7, 2.5), (0.95, 0.85, 4.0), (0.9, 0.5, 2.5), (1.0, 1.0, 2.5)]


def simulated_picks(true_strengths, count, seed=0):
    """A user who prefers setting i over j with probability σ(s_i - s_j), shown random pairs of settings."""
    rng = random.Random(seed)
    picks = []
    for _ in range(count):
        a, b = rng.sample(range(len(SETTINGS)), 2)
        p_a = 1 / (1 + math.exp(true_strengths[b] - true_strengths[a]))
        picks.append((SETTINGS[a], SETTINGS[b]) if rng.random() < p_a else (SETTINGS[b], SETTINGS[a]))
    return picks


def test_the_fit_finds_the_simulated_users_favourite_and_orders_the_rest():
    truth = [0.0, -1.0, 1.5, -0.5, 0.5, -2.0]  # the user likes (0.85, 0.7) best, "VAE only" least
    picks = simulated_picks(truth, 300)
    preference = preferred_setting(picks)
    assert preference is not None and preference.setting == SETTINGS[2]
    assert preference.picks == 300
    strengths = fit_strengths(picks)
    fitted = sorted(range(len(SETTINGS)), key=lambda i: strengths[SETTINGS[i]])
    assert fitted[0] == 5 and fitted[-1] == 2  # least and most liked, in the right places
    assert "τ1 0.85 / τ2 0.70" in preference.words() and "300 picks" in preference.words()


def test_no_default_before_enough_picks_and_same_setting_picks_say_nothing():
    picks = simulated_picks([0.0, -1.0, 1.5, -0.5, 0.5, -2.0], MIN_PICKS - 1)
    assert preferred_setting(picks) is None
    same = [(SETTINGS[0], SETTINGS[0])] * 50  # two seeds of one setting: no information about settings
    assert preferred_setting(picks + same) is None
    assert preferred_setting(picks + simulated_picks([0.0] * 6, 1, seed=3)) is not None


def test_a_setting_seen_in_one_pick_is_not_crowned_by_it():
    picks = [(SETTINGS[0], SETTINGS[1])] * 5 + [(SETTINGS[1], SETTINGS[0])] * 3 + [(SETTINGS[3], SETTINGS[1])]
    preference = preferred_setting(picks)
    assert preference is not None and preference.setting == SETTINGS[0]  # SETTINGS[3] won its only pick


def test_settings_are_read_as_the_stage_bar_rounds_them():
    assert setting_of({"tau1": 0.9500001, "tau2": 0.849, "guidance_scale": 2.5}) == (0.95, 0.85, 2.5)


def test_the_store_keeps_picks_per_model_across_reopening_and_exports_them(tmp_path):
    store = PickStore(tmp_path / "picks.sqlite")
    store.add("demo", SETTINGS[0], SETTINGS[1], "/r/a.png", "/r/b.png")
    store.add("other", SETTINGS[2], SETTINGS[0], "/r/c.png", "/r/a.png")
    store.close()
    store = PickStore(tmp_path / "picks.sqlite")
    assert [(p.winner, p.loser) for p in store.picks("demo")] == [(SETTINGS[0], SETTINGS[1])]
    assert len(store.picks()) == 2
    assert store.export_jsonl(tmp_path / "picks.jsonl", "other") == 1
    line = json.loads((tmp_path / "picks.jsonl").read_text().splitlines()[0])
    assert line["model"] == "other"
    assert line["winner"] == {"tau1": 0.85, "tau2": 0.7, "guidance_scale": 2.5, "path": "/r/c.png"}
    assert line["loser"]["path"] == "/r/a.png"


def test_the_built_in_demo_is_one_model_whether_named_by_the_controls_or_by_a_recipe():
    from squeeze_studio.app.model.picks import model_name
    from squeeze_studio.models import default_model_path

    assert model_name("", "") == model_name(str(default_model_path()), "") == "demo"
    assert model_name("/models/other", "/addons/x") == "/models/other|/addons/x"

"""Models and memory: which model (and add-on, device, memory mode) is chosen and loaded, its stage defaults and
reference cap, the devices present, the memory plan, the measured peak and the last out-of-memory line.

It follows the worker's load and memory signals; ``Studio`` tells it when a job starts, ends or fails.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from .memory_info import usable_settings
from .model_names import addon_label, model_label
from .reference_limits import DEFAULT_REFERENCE_CAP

RECENT_MODELS = 8
RECENT_ADDONS = 8
STAGE_FIELDS = ("tau1", "tau2", "guidance_scale")
PLAN_DELAY_MS = 250  # a new plan is asked for this long after the size or the references last changed


class ModelsRoom(QObject):
    status_changed = Signal()                # model / device / memory text
    recent_models_changed = Signal()
    recent_addons_changed = Signal()
    stage_defaults_changed = Signal()        # the loaded model's recommended τ1/τ2/guidance (or none loaded)
    memory_changed = Signal()                # devices present, the memory plan, the measured peak, a lighter mode

    def __init__(self, studio):
        super().__init__(studio)
        self._studio = studio
        self.controls, self.client = studio.controls, studio.client
        self.recent_models: list[str] = []
        self.recent_addons: list[str] = []
        self.loaded: tuple[str, str] | None = None      # (model, add-on) of the engine in the worker
        self.loaded_settings: tuple[str, str] | None = None  # (device, memory) it was loaded with
        self.stage_defaults: dict | None = None         # the loaded model's: tau1, tau2, guidance_scale, origin
        # (model, add-on, device, memory) the window goes back to after a failed load
        self._last_good: tuple[str, str, str, str] | None = None
        self._loading: tuple[str, str, str, str] | None = None
        self.devices: list[str] = []        # present, best first; empty until the worker has looked
        self.plan: dict | None = None       # the memory plan of the loaded engine (``memory_info.plan_dict``)
        self.peak: int | None = None        # measured peak VRAM of the last run (CUDA only)
        self.memory_problem = ""            # the last out-of-memory line, until a run finishes or a new choice
        self.lighter_mode = ""              # the lighter mode it named
        self._out_of_memory_pending = False
        self._plan_after_job = False
        self._defaults_for: tuple[str, str] | None = None  # the choice whose defaults replace the controls
        self._announce_defaults = False  # say so in the status bar even when they change nothing
        self._applying_defaults = False
        self._preload_pending = False
        self.model_name, self.device_name, self.memory_text = "", "", ""
        self.reference_cap = DEFAULT_REFERENCE_CAP  # the loaded model's (``reference_limits``)

        worker = self.client.worker
        worker.devices_found.connect(self._on_devices)
        worker.model_loading.connect(self._on_model_loading)
        worker.plan_ready.connect(self._on_plan)
        worker.peak_measured.connect(self._on_peak)
        worker.out_of_memory.connect(self._on_out_of_memory)
        worker.model_ready.connect(self._on_model_ready)
        worker.memory.connect(self._on_memory)
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PLAN_DELAY_MS)
        self._plan_timer.timeout.connect(self.refresh_plan)

    def follow_edits(self) -> None:
        """Connect to the controls and subjects once the session is restored (restoring is not an edit)."""
        self.controls.changed.connect(self._on_control_edited)
        self.controls.changed.connect(self._on_size_edited)
        self.recent_models_changed.connect(self._studio.autosaver.schedule)
        self.recent_addons_changed.connect(self._studio.autosaver.schedule)
        self._studio.subjects.changed.connect(self._plan_timer.start)
        self._studio.subjects.current_changed.connect(self._plan_timer.start)

    # --- what is chosen and loaded --------------------------------------------------------------
    def preload_model(self) -> None:
        """Start loading the chosen model (and add-on) in the worker; the window is already on screen."""
        self.client.load(*self.engine_key())

    def model_key(self) -> tuple[str, str]:
        return self.controls.get("model"), self.controls.get("addon")

    def engine_key(self) -> tuple[str, str, str, str]:
        """What the engine is loaded for: model, add-on, device ("" = automatic) and memory mode."""
        return (*self.model_key(), *self.controls.engine_settings())

    @property
    def loading_model(self) -> bool:
        return self._loading is not None

    def take_defaults_on_load(self) -> None:
        """A first start (no session) takes the chosen model's stage defaults once it loads."""
        self._defaults_for = self.model_key()

    def choose_model(self, model: str, addon: str | None = None, take_defaults: bool = True) -> None:
        """Switch to ``model`` (a folder, a repo id or "" for the demo) and ``addon`` (None: keep the current).

        It joins the recent list only once it has loaded; when it loads, its stage defaults replace the
        controls' unless ``take_defaults`` is off (a restored recipe keeps its own values)."""
        self.controls.set("model", model)
        if addon is not None:
            self.controls.set("addon", addon)
        self._defaults_for = self.model_key() if take_defaults else None
        self._clear_memory_problem()
        self._announce_defaults = True
        self._load_when_idle()

    def choose_addon(self, addon: str, take_defaults: bool = True) -> None:
        self.choose_model(self.controls.get("model"), addon, take_defaults)

    def choose_memory(self, device: str | None = None, memory: str | None = None) -> None:
        """Run on ``device`` ("" = automatic) in memory mode ``memory`` (None: keep the current); the model loads
        again with them (once the running job ends), and they are remembered with the session."""
        if device is not None:
            self.controls.set("device", device)
        if memory is not None:
            self.controls.set("memory", memory)
        self._clear_memory_problem()
        if self.loaded is not None and self.loaded == self.model_key() \
                and self.loaded_settings == self.controls.engine_settings():
            return  # already loaded like that
        self._load_when_idle()

    def _load_when_idle(self) -> None:
        self._preload_pending = self._studio.busy  # loads when the running job ends
        if not self._studio.busy:
            self.preload_model()

    def use_suggested_mode(self) -> None:
        mode = self.suggested_mode()
        if mode:
            self._studio.message.emit(f"Memory mode {mode}: loading the model again")
            self.choose_memory(memory=mode)

    def apply_model_defaults(self, announce: bool = False) -> None:
        """Set τ1/τ2/guidance to the loaded model's recommended values; the status bar says where they come
        from when they changed something (always with ``announce``)."""
        defaults = self.stage_defaults
        if defaults is None:
            self._studio.message.emit("No model is loaded yet, so it has no stage defaults")
            return
        before = [self.controls.get(name) for name in STAGE_FIELDS]
        self._applying_defaults = True
        try:
            self.controls.set("tau2", defaults["tau2"])  # tau2 first: it pushes tau1 up, never past the target
            self.controls.set("tau1", defaults["tau1"])
            self.controls.set("guidance_scale", defaults["guidance_scale"])
        finally:
            self._applying_defaults = False
        changed = before != [self.controls.get(name) for name in STAGE_FIELDS]
        if announce or changed:
            self._studio.message.emit(f"Stage defaults τ1 {defaults['tau1']:.2f} / τ2 {defaults['tau2']:.2f}, "
                                      f"guidance {defaults['guidance_scale']:g} from: {defaults['origin']}")

    def _on_control_edited(self, name: str) -> None:
        """A stage value set by hand (or by a recipe) before the chosen model loaded is kept, not overwritten."""
        if name in ("", *STAGE_FIELDS) and not self._applying_defaults:
            self._defaults_for = None

    def _remember(self, model: str, addon: str) -> None:
        if model:
            self.recent_models = [model] + [m for m in self.recent_models if m != model][: RECENT_MODELS - 1]
            self.recent_models_changed.emit()
        if addon:
            self.recent_addons = [addon] + [a for a in self.recent_addons if a != addon][: RECENT_ADDONS - 1]
            self.recent_addons_changed.emit()

    def _fall_back(self, failed: tuple[str, str, str, str] | None) -> None:
        """After a failed load the choice goes back to the last model (device, memory mode) that loaded, which
        loads again."""
        target = self._last_good
        if target is None or failed is None or target == failed or self.engine_key() != failed:
            return
        for name, value in zip(("model", "addon", "device", "memory"), target, strict=True):
            self.controls.set(name, value)
        if not self._studio.busy:
            self.preload_model()

    # --- memory ---------------------------------------------------------------------------------
    def suggested_mode(self) -> str:
        """A lighter memory mode to offer: the one the last out-of-memory error named, else the one the plan says
        would fit; "" when there is none or it is already chosen (or what "auto" chose)."""
        plan = self.plan or {}
        mode = self.lighter_mode or ("" if plan.get("fits", True) else plan.get("suggestion") or "")
        return "" if mode in (self.controls.get("memory"), plan.get("mode")) else mode

    def refresh_plan(self) -> None:
        """Ask the worker for the loaded engine's plan at the current size and number of references."""
        self._plan_timer.stop()
        if self._studio.busy:  # asked again when the job ends, so the peak of this run stays beside its own plan
            self._plan_after_job = True
            return
        if self._studio.closed or self.loaded is None or self.loaded != self.model_key():
            return
        self.client.plan(self.controls.to_request(self._studio.subjects.references()))

    def _on_size_edited(self, name: str) -> None:
        if name in ("", "width", "height"):
            self._plan_timer.start()

    def _clear_memory_problem(self) -> None:
        if self.memory_problem or self.lighter_mode:
            self.memory_problem, self.lighter_mode = "", ""
            self.memory_changed.emit()

    # --- the job's part -------------------------------------------------------------------------
    def job_started(self) -> None:
        self._plan_timer.stop()  # the run sends the plan for its own request

    def job_ended(self, outcome: str) -> None:
        if self._preload_pending:
            self._preload_pending = False
            self.preload_model()
        if outcome != "cancelled":
            self._clear_memory_problem()  # a run finished: the last out-of-memory error is history
        self.plan_if_asked()

    def plan_if_asked(self) -> None:
        """The plan asked for during the run, now that it is over."""
        if self._plan_after_job:
            self._plan_after_job = False
            self.refresh_plan()

    def failed(self, text: str) -> tuple[str, str, str, str] | None:
        """A one-line failure: keeps an out-of-memory line; a failed load forgets the engine. Returns the
        (model, add-on, device, memory) that failed to load, None for a failed run."""
        failed_key = None
        if self._out_of_memory_pending:
            self._out_of_memory_pending = False
            self.memory_problem = text.removeprefix("Could not load model: ")
            self.memory_changed.emit()
        if text.startswith("Could not load model"):
            failed_key, self._loading, self.loaded, self.loaded_settings = self._loading, None, None, None
            self.model_name = "No model loaded"
            self.stage_defaults = None
            self.status_changed.emit()
            self.stage_defaults_changed.emit()
        return failed_key

    def after_failure(self, failed_key: tuple[str, str, str, str] | None) -> None:
        """Once the failure is shown: go back to the last good model, or load the one chosen during the run."""
        if failed_key is not None:
            self._fall_back(failed_key)
        elif self._preload_pending:
            self._preload_pending = False
            self.preload_model()

    # --- worker signals -------------------------------------------------------------------------
    def _on_devices(self, devices: list[str]) -> None:
        """The worker looked: a remembered device that is gone (or a mode it cannot run) falls back to automatic,
        as the worker does when it loads."""
        self.devices = list(devices)
        device, memory, note = usable_settings(self.devices, *self.controls.engine_settings())
        if (device, memory) != self.controls.engine_settings():
            self.controls.set("device", device)
            self.controls.set("memory", memory)
            self._studio.message.emit(note)
        self.memory_changed.emit()

    def _on_model_loading(self, model: str, addon: str, device: str = "", memory: str = "auto") -> None:
        self._loading = (model, addon, device, memory)
        self.loaded = self.loaded_settings = None  # the worker dropped the previous engine
        self.plan, self.peak = None, None
        self.memory_changed.emit()
        suffix = f" + {addon_label(addon)}" if addon else ""
        self.model_name = f"Loading {model_label(model) if model else 'demo model'}{suffix}…"
        self._studio.generation.loading()
        self.status_changed.emit()

    def _on_model_ready(self, name: str, device: str, defaults: dict) -> None:
        key, self._loading = self._loading or self.engine_key(), None
        self._last_good = key
        self.loaded, self.loaded_settings = key[:2], key[2:]
        self.model_name, self.device_name = name, device
        self._studio.generation.loaded()
        self.status_changed.emit()
        self._remember(*key[:2])  # only a model that loaded joins the recent lists
        self.stage_defaults = dict(defaults)
        self.reference_cap = int(defaults.get("max_references") or DEFAULT_REFERENCE_CAP)
        self.stage_defaults_changed.emit()
        self._plan_timer.start()  # the plan that came with the load is for the model's own size
        if self._defaults_for == key[:2]:
            self._defaults_for = None
            self.apply_model_defaults(announce=self._announce_defaults)

    def _on_plan(self, plan: dict) -> None:
        self.plan, self.peak = dict(plan), None
        self.memory_changed.emit()

    def _on_peak(self, peak) -> None:
        self.peak = None if peak is None else int(peak)
        self.memory_changed.emit()

    def _on_out_of_memory(self, lighter: str) -> None:
        """Comes just before the one-line ``failed`` message, which is kept in the memory row too."""
        self.lighter_mode = lighter
        self._out_of_memory_pending = True

    def _on_memory(self, text: str) -> None:
        self.memory_text = text
        self.status_changed.emit()

    # --- session --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"recent_models": list(self.recent_models), "recent_addons": list(self.recent_addons)}

    def load_dict(self, data: dict) -> None:
        self.recent_models = [str(m) for m in data.get("recent_models") or []][:RECENT_MODELS]
        self.recent_addons = [str(a) for a in data.get("recent_addons") or []][:RECENT_ADDONS]  # newer sessions

"""The Operator panel of public mode: log in (password or Hugging Face OAuth) for this session,
which shows the gated controls (finetune, full report, run loading) again. Rules: ui/public.py."""

from __future__ import annotations

import gradio as gr

from ui.public import Policy
from ui.state import Session

# (tab attribute, component attribute) of the controls hidden from visitors in public mode
GATED_CONTROLS = (("finetune", "start_btn"), ("finetune", "cancel_btn"),
                  ("finetune", "load_btn"), ("finetune", "run_pick"),
                  ("finetune", "load_pick_btn"), ("finetune", "refresh_btn"),
                  ("report", "run_btn"))
NOTICE = ("**Public server.** Finetune runs, full reports and loading other runs are off for "
          "visitors; an operator can log in to use them.")


class OperatorPanel:
    """Built at the top of the page; `wire(tabs)` once the tabs exist."""

    def __init__(self, state: gr.State, policy: Policy):
        self.state, self.policy = state, policy
        with gr.Accordion("Operator", open=False, visible=policy.public, elem_id="operator"):
            gr.Markdown(NOTICE, elem_id="operator-notice")
            with gr.Row():
                self.password = gr.Textbox(label="Operator password", type="password",
                                           visible=bool(policy.password), max_length=200,
                                           elem_id="operator-password")
                self.login_btn = gr.Button("Log in", visible=bool(policy.password),
                                           elem_id="operator-login")
                self.hf_login = gr.LoginButton() if policy.oauth else None
            self.status = gr.Markdown("", elem_id="operator-status")

    def wire(self, demo: gr.Blocks, tabs) -> None:
        self.gated = [getattr(getattr(tabs, t, None), c, None) for t, c in GATED_CONTROLS]
        self.gated = [c for c in self.gated if c is not None]
        if self.policy.public:
            for comp in self.gated:
                comp.visible = False
        outputs = [self.status, self.password, *self.gated]
        self.login_btn.click(self.login, [self.state, self.password], outputs,
                             api_name="operator_login")
        if self.hf_login is not None:
            demo.load(self.oauth_login, [self.state], [self.status, *self.gated])

    def _unlocked(self, session: Session, who: str) -> dict:
        session.operator = True
        return {self.status: f"Logged in as operator ({who}) for this session.",
                **{c: gr.update(visible=True) for c in self.gated}}

    def login(self, session: Session, password: str):
        if not self.policy.public:
            return {self.status: "Not a public server: everything is on already."}
        if not self.policy.check_password(password):
            raise gr.Error("Wrong operator password.")
        return {**self._unlocked(session, "password"), self.password: ""}

    def oauth_login(self, session: Session, profile: gr.OAuthProfile | None):
        if profile is None or profile.username not in self.policy.operators:
            return {self.status: ""}
        return self._unlocked(session, profile.username)

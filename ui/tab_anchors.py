"""Anchored terms: edit the dictionary, validate it, import/export, accept suggestions, preview."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ui import anchors_view as av
from ui.state import AppContext, Session
from ui.store import SIDES
from unlearn.anchors import AnchorDictionary, AnchorError, load_anchors, save_anchors
from unlearn.models import ModelLoadError

CANDIDATE_HEADERS = ["term", "translations (fill in after accepting)", "score", "why"]


def initial_rows(ctx: AppContext) -> list[list[str]]:
    path = ctx.demo_dir / "anchors.json"
    try:
        rows, _, _ = av.validated_rows(av.dictionary_to_rows(load_anchors(path)))
        return rows
    except AnchorError:
        return [["", "", ""]]


def sample_block(ctx: AppContext, chars: int = 600) -> str:
    path = ctx.demo_dir / "target.txt"
    if not path.is_file():
        return "Type a passage of the target text here."
    text = path.read_text(encoding="utf-8")
    first = text.strip().split("\n\n")[0]
    return first[:chars]


class AnchorsTab:
    """Components and handlers of the Anchored terms tab."""

    def __init__(self, ctx: AppContext, state: gr.State):
        self.ctx, self.state = ctx, state
        self.selected = gr.State(None)
        gr.Markdown("Each row: a term of the target and its generic translations (several "
                    "separated by `|`, one is drawn per block). Edit cells directly; "
                    "**Validate** checks every row.")
        self.table = gr.Dataframe(value=initial_rows(ctx), headers=av.HEADERS,
                                  datatype=["str", "str", "str"], type="array",
                                  interactive=True, static_columns=[2], wrap=True,
                                  max_height=420, elem_id="anchors-table",
                                  column_widths=["25%", "35%", "40%"])
        with gr.Row():
            self.validate_btn = gr.Button("Validate", variant="primary", elem_id="anchors-validate")
            self.add_btn = gr.Button("Add row", elem_id="anchors-add")
            self.delete_btn = gr.Button("Delete selected row", elem_id="anchors-delete")
            self.reset_btn = gr.Button("Reload demo dictionary")
        self.message = gr.Markdown("", elem_id="anchors-message")
        with gr.Row():
            self.import_file = gr.File(label="Import JSON or CSV", file_types=[".json", ".csv"],
                                       type="filepath", height=120)
            with gr.Column():
                self.export_json = gr.Button("Export JSON", size="sm")
                self.export_csv = gr.Button("Export CSV", size="sm")
                self.export_file = gr.File(label="Exported dictionary", interactive=False,
                                           height=80)
        with gr.Accordion("Suggested candidate terms", open=False):
            with gr.Row():
                self.suggest_btn = gr.Button("Suggest candidates", elem_id="anchors-suggest")
                self.use_reinforced = gr.Checkbox(
                    False, label="Also rank words by the reinforced model of the latest "
                                 "Finetune run (slower)")
            self.candidates = gr.Dataframe(headers=CANDIDATE_HEADERS, type="array",
                                           interactive=False, wrap=True, max_height=300)
            self.cand_selected = gr.State(None)
            with gr.Row():
                self.accept_btn = gr.Button("Accept selected", size="sm")
                self.accept_all_btn = gr.Button("Accept all", size="sm")
        with gr.Accordion("Translated block preview", open=True):
            self.block = gr.Textbox(value=sample_block(ctx), lines=4, label="Text block")
            with gr.Row():
                self.seed = gr.Number(0, precision=0, label="Seed (choice among translations)")
                self.preview_btn = gr.Button("Preview translation", elem_id="anchors-preview")
            self.original_hl = gr.HighlightedText(label="Original block", color_map=av.COLORS,
                                                  combine_adjacent=False, show_legend=True,
                                                  elem_id="anchors-original")
            self.translated_hl = gr.HighlightedText(label="Translated block (generic text)",
                                                    color_map=av.COLORS, show_legend=True,
                                                    elem_id="anchors-translated")
            with gr.Accordion("Position mapping", open=False):
                self.mapping = gr.Dataframe(headers=["pos", "original token", "-> pos",
                                                     "translated token",
                                                     "forbidden first tokens"],
                                            interactive=False, max_height=300)
        tbl = [self.table, self.message]
        self.validate_btn.click(self.validate, [self.table], tbl, api_name="validate_anchors")
        self.add_btn.click(self.add_row, [self.table], tbl)
        self.table.select(self.select_row, None, [self.selected])
        self.delete_btn.click(self.delete_row, [self.table, self.selected], tbl + [self.selected])
        self.reset_btn.click(lambda: self.validate(initial_rows(ctx)), None, tbl)
        self.import_file.upload(self.import_dictionary, [self.import_file], tbl)
        self.export_json.click(lambda t, s: self.export(t, s, "json"), [self.table, self.state],
                               [self.export_file, self.message])
        self.export_csv.click(lambda t, s: self.export(t, s, "csv"), [self.table, self.state],
                              [self.export_file, self.message])
        self.suggest_btn.click(self.suggest, [self.state, self.table, self.use_reinforced],
                               [self.candidates, self.message], api_name="suggest_anchors")
        self.candidates.select(self.select_row, None, [self.cand_selected])
        self.accept_btn.click(self.accept, [self.table, self.candidates, self.cand_selected],
                              tbl)
        self.accept_all_btn.click(self.accept, [self.table, self.candidates], tbl)
        self.preview_btn.click(self.preview, [self.state, self.table, self.block, self.seed],
                               [self.original_hl, self.translated_hl, self.mapping,
                                self.message], api_name="preview_translation")

    # -- table -------------------------------------------------------------------------
    def validate(self, rows):
        rows, n_err, n_warn = av.validated_rows(rows)
        summary = (f"{len(rows)} terms: **{n_err} error(s)**, {n_warn} warning(s) "
                   "(see the issues column)." if n_err or n_warn else
                   f"{len(rows)} terms: no problems found.")
        return {self.table: rows or [["", "", ""]], self.message: summary}

    def add_row(self, rows):
        rows = av.clean_rows(rows) + [["", ""]]
        return {self.table: [[*r, ""] for r in rows],
                self.message: "Row added at the bottom: fill in key and translations."}

    @staticmethod
    def select_row(evt: gr.SelectData):
        return evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index

    def delete_row(self, rows, selected):
        rows = av.clean_rows(rows)
        if selected is None or not 0 <= int(selected) < len(rows):
            raise gr.Error("Click a cell of the row to delete first.")
        removed = rows.pop(int(selected))
        out = self.validate(rows)
        out[self.message] = f"Deleted {removed[0]!r}. " + out[self.message]
        return {**out, self.selected: None}

    def import_dictionary(self, path: str | None):
        if not path:
            return {self.message: ""}
        try:
            anchors = load_anchors(path)
        except AnchorError as exc:
            raise gr.Error(f"Cannot import {Path(path).name}: {exc}") from exc
        out = self.validate(av.dictionary_to_rows(anchors))
        out[self.message] = f"Imported {len(anchors)} terms. " + out[self.message]
        return out

    def export(self, rows, session: Session, fmt: str):
        anchors, _ = av.rows_to_dictionary(rows)
        path = self.ctx.session_file(session, f"anchors.{fmt}")
        try:
            save_anchors(anchors, path)
        except AnchorError as exc:
            raise gr.Error(str(exc)) from exc
        return {self.export_file: str(path),
                self.message: f"Exported {len(anchors)} terms as {fmt.upper()}."}

    # -- suggestions ---------------------------------------------------------------------
    def suggest(self, session: Session, rows, use_reinforced: bool = False):
        from ui.suggest_adapter import suggest_candidates

        anchors, _ = av.rows_to_dictionary(rows)
        try:
            cands = suggest_candidates(self.ctx, session, anchors,
                                       use_reinforced=bool(use_reinforced))
        except (ModelLoadError, ValueError, OSError) as exc:
            raise gr.Error(str(exc)) from exc
        return {self.candidates: cands or [["", "", "", "no new candidates"]],
                self.message: f"{len(cands)} candidate term(s) not yet in the dictionary."}

    def accept(self, rows, candidates, selected=None):
        cands = [c for c in (candidates or []) if c and str(c[0]).strip()]
        if selected is not None:
            if not 0 <= int(selected) < len(cands):
                raise gr.Error("Click a candidate row first.")
            cands = [cands[int(selected)]]
        merged, added = av.merge_candidates(rows, [(str(c[0]), str(c[1])) for c in cands])
        out = self.validate(merged)
        out[self.message] = f"Added {added} term(s). " + out[self.message]
        return out

    # -- preview -------------------------------------------------------------------------
    def preview(self, session: Session, rows, text: str, seed):
        anchors, _ = av.rows_to_dictionary(rows)
        if not text or not text.strip():
            raise gr.Error("Type a text block to translate.")
        try:
            anchors.check()
            tokenizer = self.ctx.store.get(session.sides[SIDES[0]] or "").tokenizer
            pv = av.preview(tokenizer, anchors, text, seed=int(seed or 0))
        except AnchorError as exc:
            raise gr.Error(f"Fix the dictionary first: {exc}") from exc
        except (ModelLoadError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        n = len(pv.translation.spans)
        return {self.original_hl: pv.original, self.translated_hl: pv.translated,
                self.mapping: pv.table,
                self.message: f"{n} anchored term occurrence(s) translated."}


def dictionary_from_rows(rows) -> AnchorDictionary:
    """The table's dictionary, checked (raises `AnchorError` listing the errors)."""
    anchors, _ = av.rows_to_dictionary(rows)
    return anchors.check()

"""Token-level translation and mapping: golden cases with a byte-level BPE and a SentencePiece-style
tokenizer built here, both consistency rules, demo-dictionary coverage."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
import torch

from unlearn.anchors import AnchorDictionary, choose_translations, filter_redundant
from unlearn.labels import forbidden_mask_from_lists, generic_labels
from unlearn.translate import AnchorMatcher, render_preview, translate_block

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "demo"

ANCHORS = AnchorDictionary({"Harry": ["Jon"], "Harry Potter": ["Jon Smith"],
                            "Hogwarts": ["Mystic Academy"], "Quidditch": ["Skyball"],
                            "Ron": ["Mark"]})
TEXT = "Harry Potter went to Hogwarts.\nHarry said Ron's Quidditch friend was Harry's."

BPE_CORPUS = ["Harry Potter went to Hogwarts with Ron. Harry said Ron was a friend.",
              "Jon Smith went to the Mystic Academy with Mark. Jon said Mark was a friend.",
              "They played Skyball and talked about the Academy.",
              "\"Harry,\" said Ron. Potter was there.\nHarry went home."] * 25


def build_sp_tokenizer():
    """A SentencePiece-style tokenizer: Unigram pieces with "▁" word starts, byte fallback
    ("\\n" -> <0x0A>), Metaspace pre-tokenizer/decoder and a BOS template, like Llama-1/2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "</s>", "<unk>", "<pad>"]
    words = ["▁said", "▁Harry", "Harry", "▁Harry's", "▁Potter", "▁Potters", "▁Hog", "warts",
             "▁went", "▁to", "▁the", "▁and", "▁was", "▁with", "▁Ron", "Ron", "▁friend", "'s",
             "▁a", "▁x", "▁Jon", "Jon", "▁Mark", "Mark", "▁Mystic", "▁Academy", "▁Sky", "ball",
             "▁Smith", "▁Quid", "ditch", "▁met", "▁He", "▁Sir", "ish"]
    chars = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,'\"!?-") + ["▁"]
    vocab = [(s, 0.0) for s in specials] + [(f"<0x{i:02X}>", -20.0) for i in range(256)]
    vocab += [(w, -2.0) for w in words] + [(c, -8.0) for c in chars]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(),
                                     decoders.Metaspace(replacement="▁", prepend_scheme="always")])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")


@pytest.fixture(scope="module")
def sp_tok():
    return build_sp_tokenizer()


@pytest.fixture(scope="module")
def bpe_tok():
    from unlearn.demo.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(BPE_CORPUS, vocab_size=420)


def toks(tok, ids):
    return tok.convert_ids_to_tokens(list(ids))


def plain(tok, ids):
    return tok.decode(ids, skip_special_tokens=True)


# ----------------------------------------------------------------------------- variants

def test_variants_sentencepiece_style(sp_tok):
    m = AnchorMatcher(sp_tok, ANCHORS)
    got = {(k, c, s): toks(sp_tok, ids) for ids, (k, c, s) in m.variants.items()}
    assert got[("Harry", "start", "")] == ["▁Harry"]  # block start == after a space ("▁")
    assert got[("Harry", "newline", "")] == ["Harry"]  # after <0x0A>: no "▁"
    assert got[("Harry", "start", "'s")] == ["▁Harry's"]  # possessive merged into one piece
    assert got[("Hogwarts", "start", "")] == ["▁Hog", "warts"]
    assert got[("Hogwarts", "newline", "")] == ["H", "o", "g", "warts"]
    assert got[("Harry Potter", "start", "s")] == ["▁Harry", "▁Potters"]
    assert ("Harry", "space", "") not in got  # same tokens as "start": deduplicated


def test_variants_byte_level(bpe_tok):
    m = AnchorMatcher(bpe_tok, ANCHORS)
    got = {(k, c, s): toks(bpe_tok, ids) for ids, (k, c, s) in m.variants.items()}
    assert got[("Harry", "start", "")] == ["Harry"]  # also the form after "Ċ" and '"'
    assert got[("Harry", "space", "")] == ["ĠHarry"]
    assert got[("Hogwarts", "start", "")] == ["Ho", "gwarts"]
    assert got[("Hogwarts", "space", "")] == ["ĠHogwarts"]
    assert not any(s for (_, _, s) in got)  # "'s" is always a separate token in byte-level BPE


# ----------------------------------------------------------------------------- golden cases

def test_golden_sentencepiece(sp_tok):
    ids = sp_tok(TEXT)["input_ids"]
    assert toks(sp_tok, ids) == [
        "<s>", "▁Harry", "▁Potter", "▁went", "▁to", "▁Hog", "warts", ".", "<0x0A>", "Harry",
        "▁said", "▁Ron", "'s", "▁Quid", "ditch", "▁friend", "▁was", "▁Harry's", "."]
    tr = translate_block(ids, sp_tok, ANCHORS)
    assert toks(sp_tok, tr.translated_ids) == [
        "<s>", "▁Jon", "▁Smith", "▁went", "▁to", "▁Mystic", "▁Academy", ".", "<0x0A>", "Jon",
        "▁said", "▁Mark", "'s", "▁Sky", "ball", "▁friend", "▁was", "▁Jon", "'s", "."]
    assert plain(sp_tok, tr.translated_ids) == (
        "Jon Smith went to Mystic Academy.\nJon said Mark's Skyball friend was Jon's.")
    # interior -> -1; last token of a term -> last token of its translation; rule 1 at 8 and 16
    assert tr.mapping == [0, -1, 2, 3, 4, -1, 6, 7, -1, 9, 10, 11, 12, -1, 14, 15, -1, 18, 19]
    assert [(s, e, k) for s, e, k, _ in tr.spans] == [
        (1, 3, "Harry Potter"), (5, 7, "Hogwarts"), (9, 10, "Harry"), (11, 12, "Ron"),
        (13, 15, "Quidditch"), (17, 18, "Harry")]
    assert tr.translated_spans[1] == (5, 7)


def test_golden_byte_level(bpe_tok):
    ids = bpe_tok(TEXT)["input_ids"]
    assert toks(bpe_tok, ids) == [
        "<s>", "Harry", "ĠPotter", "Ġwent", "Ġto", "ĠHogwarts", ".", "Ċ", "Harry", "Ġsaid",
        "ĠRon", "'", "s", "Ġ", "Q", "u", "i", "d", "d", "i", "t", "c", "h", "Ġfriend", "Ġwas",
        "ĠHarry", "'", "s", "."]
    tr = translate_block(ids, bpe_tok, ANCHORS)
    assert plain(bpe_tok, tr.translated_ids) == (
        "Jon Smith went to Mystic Academy.\nJon said Mark's Skyball friend was Jon's.")
    assert toks(bpe_tok, tr.translated_ids)[:10] == [
        "<s>", "Jon", "ĠSmith", "Ġwent", "Ġto", "ĠMystic", "ĠAcademy", ".", "Ċ", "Jon"]
    # block start "Harry Potter" (2 tokens), single-token "ĠHogwarts" -> 2 tokens, 9-token
    # "Quidditch" after a lone "Ġ" -> "ĠSkyball" (the lone space is replaced with it, so the
    # baseline reads the canonical tokenization), repeated "Harry" after "Ċ" and "Ġwas"
    assert toks(bpe_tok, tr.translated_ids)[11:16] == ["ĠMark", "'", "s", "ĠSkyball", "Ġfriend"]
    assert tr.mapping == [0, -1, 2, 3, 4, 6, 7, -1, 9, 10, 11, 12, 13, -1,
                          -1, -1, -1, -1, -1, -1, -1, -1, 14, 15, -1, 17, 18, 19, 20]
    assert tr.spans[4][:3] == (13, 23, "Quidditch")


def test_term_after_space_and_newline_mid_block(sp_tok, bpe_tok):
    for tok in (sp_tok, bpe_tok):
        ids = tok("He met Ron.\nRon met Hogwarts")["input_ids"]
        tr = translate_block(ids, tok, ANCHORS)
        assert plain(tok, tr.translated_ids) == "He met Mark.\nMark met Mystic Academy"
        assert [k for _, _, k, _ in tr.spans] == ["Ron", "Ron", "Hogwarts"]


def test_word_boundaries_and_inflections(sp_tok, bpe_tok):
    for tok in (sp_tok, bpe_tok):
        ids = tok("SirHarry and Harryish met Harrys.")["input_ids"]
        tr = translate_block(ids, tok, ANCHORS)
        # inside a word: untouched; plural "Harrys" -> "Jons" (base match + copied "s")
        assert plain(tok, tr.translated_ids) == "SirHarry and Harryish met Jons."
        assert [k for _, _, k, _ in tr.spans] == ["Harry"]


def test_overlapping_keys_longest_wins(sp_tok, bpe_tok):
    for tok in (sp_tok, bpe_tok):
        ids = tok("Harry Potter and Harry")["input_ids"]
        tr = translate_block(ids, tok, ANCHORS)
        assert [k for _, _, k, _ in tr.spans] == ["Harry Potter", "Harry"]
        assert plain(tok, tr.translated_ids) == "Jon Smith and Jon"


def test_possessive_merged_piece(sp_tok):
    ids = sp_tok("He met Harry's friend")["input_ids"]
    assert toks(sp_tok, ids)[3] == "▁Harry's"
    tr = translate_block(ids, sp_tok, ANCHORS)
    assert toks(sp_tok, tr.translated_ids) == ["<s>", "▁He", "▁met", "▁Jon", "'s", "▁friend"]
    assert tr.mapping == [0, 1, 2, 4, 5]


def test_several_translations_seeded_and_consistent(sp_tok):
    anchors = AnchorDictionary({"Harry": ["Jon", "Mark"]})
    ids = sp_tok("Harry met Harry and Harry")["input_ids"]
    seen = set()
    for seed in range(12):
        choice = choose_translations(anchors, random.Random(seed))
        tr = translate_block(ids, sp_tok, anchors, choice)
        out = plain(sp_tok, tr.translated_ids)
        name = choice["Harry"]
        assert out == f"{name} met {name} and {name}"  # one translation per block
        again = translate_block(ids, sp_tok, anchors, rng=random.Random(seed))
        assert again.translated_ids == tr.translated_ids  # seeded
        seen.add(name)
    assert seen == {"Jon", "Mark"}


def test_preview(sp_tok):
    tr = translate_block(sp_tok("He met Harry Potter")["input_ids"], sp_tok, ANCHORS)
    assert render_preview(tr, sp_tok) == "He met [Harry Potter -> Jon Smith]"


def test_missing_choice_raises(sp_tok):
    with pytest.raises(KeyError, match="Ron"):
        translate_block(sp_tok("Ron")["input_ids"], sp_tok, ANCHORS, choice={"Harry": "Jon"})


# ----------------------------------------------------------------------------- rules

def test_rule1_masks_position_predicting_repeat(sp_tok):
    ids = sp_tok("Ron met Harry and Harry met Ron")["input_ids"]
    # <s> ▁Ron ▁met ▁Harry ▁and ▁Harry ▁met ▁Ron
    with_rule = translate_block(ids, sp_tok, ANCHORS, rules=(1, 2))
    without = translate_block(ids, sp_tok, ANCHORS, rules=(2,))
    assert with_rule.mapping == [0, 1, 2, 3, -1, 5, -1, 7]  # "▁and" -> Harry, "▁met" -> Ron
    assert without.mapping == [0, 1, 2, 3, 4, 5, 6, 7]  # without rule 1 they would be trained


def test_rule1_same_entity_partial_name(bpe_tok):
    ids = bpe_tok("Harry Potter went to Harry")["input_ids"]
    tr = translate_block(ids, bpe_tok, ANCHORS)
    assert tr.mapping[-2] == -1  # "Ġto" predicts "Harry", already seen inside "Harry Potter"


def test_rule2_forbidden_lists(sp_tok):
    ids = sp_tok("He met Harry and the friend")["input_ids"]
    # <s> ▁He ▁met ▁Harry ▁and ▁the ▁friend
    tr = translate_block(ids, sp_tok, ANCHORS)
    # after a word only the after-a-space form can start "Jon": the no-space "Jon" is not banned
    jon = {sp_tok.convert_tokens_to_ids("▁Jon")}
    assert [set(f) for f in tr.forbidden] == [set(), set(), set(), jon, jon, jon, jon]
    assert all(f == [] for f in translate_block(ids, sp_tok, ANCHORS, rules=(1,)).forbidden)


def test_rule2_no_space_forms_only_where_a_word_starts_without_space(bpe_tok):
    """A small vocabulary spells a name's no-space form in word pieces: those are forbidden only
    after a newline (or BOS / quote), never in the middle of running text."""
    m = AnchorMatcher(bpe_tok, ANCHORS)
    ids = bpe_tok("Harry went home. Ron said a friend\nwas there and\nRon went")["input_ids"]
    tr = translate_block(ids, bpe_tok, m)
    after_space = m.first_tokens("Jon", "space")
    no_space = m.first_tokens("Jon", "newline") - after_space
    assert after_space and no_space
    first_end = tr.spans[0][1] - 1
    for pos, banned in enumerate(tr.forbidden):
        if pos < first_end:
            assert banned == []
            continue
        assert after_space <= set(banned)
        assert (no_space <= set(banned)) == m.token_text(ids[pos]).endswith("\n")
    assert m.context_after(bpe_tok.bos_token_id) == "start"


def test_rule2_possessive_plural_forms_forbid_no_word_pieces():
    """The demo tokenizer reads " Lukes" as " Lu|k|es": the plural form must not forbid the piece
    " Lu" (it begins "Lucy", "Luna", ...); " Luke" itself and its possessive " Luke|'s" stay."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ASSETS.parent / "models" / "tokenizer")
    m = AnchorMatcher(tok, AnchorDictionary({"Harry": ["Luke"]}))
    piece, word = tok.convert_tokens_to_ids("ĠLu"), tok.convert_tokens_to_ids("ĠLuke")
    assert m.translation_ids("Luke", "space", "s")[0] == piece  # the case being fixed
    assert m.translation_ids("Luke", "space", "'s")[0] == word
    for ctx in ("space", None):
        assert word in m.first_tokens("Luke", ctx)
        assert piece not in m.first_tokens("Luke", ctx)
    ids = tok("Harry met Lucy.")["input_ids"]
    tr = translate_block(ids, tok, m)
    assert all(piece not in banned for banned in tr.forbidden)
    assert word in tr.forbidden[-1]


def test_rule2_skips_leading_articles(sp_tok):
    anchors = AnchorDictionary({"Hogwarts": ["the Mystic Academy"]})
    ids = sp_tok("He went to Hogwarts and the friend")["input_ids"]
    tr = translate_block(ids, sp_tok, anchors)
    assert sp_tok.convert_tokens_to_ids("▁Mystic") in tr.forbidden[-1]
    assert sp_tok.convert_tokens_to_ids("▁the") not in tr.forbidden[-1]


def test_rule2_changes_label(sp_tok):
    """Without rule 2 the baseline (reading "Jon" in context) would teach "Jon" again later."""
    ids = sp_tok("He met Harry and the friend")["input_ids"]
    jon = sp_tok.convert_tokens_to_ids("▁Jon")
    other = sp_tok.convert_tokens_to_ids("▁Mark")
    vocab = len(sp_tok)
    results = {}
    for rules in ((1, 2), (1,)):
        tr = translate_block(ids, sp_tok, ANCHORS, rules=rules)
        T = len(ids)
        v_b = torch.zeros(T, vocab)
        v_b[:, other] = 2.0
        v_b[4, jon] = 5.0  # at "▁and" the baseline's top choice is the used translation
        v_r = v_b.clone()
        mask = forbidden_mask_from_lists(tr.forbidden, vocab)
        results[rules] = generic_labels(v_b, v_r, torch.tensor(tr.mapping), [5.0],
                                        forbidden_mask=mask)[5.0]
    assert results[(1,)][5] == jon  # label of "▁the" (predicted at "▁and") would be "Jon"
    assert results[(1, 2)][5] == other


# ----------------------------------------------------------------------------- demo assets

def test_demo_dictionary_covers_target():
    anchors_path, target_path = ASSETS / "anchors.json", ASSETS / "target.txt"
    world_path = ASSETS / "world.json"
    from unlearn.anchors import load_anchors, validate_anchors

    anchors = load_anchors(anchors_path)
    kept, _ = filter_redundant(anchors)
    assert [i for i in validate_anchors(kept) if i.severity == "error"] == []
    paragraphs = [p for p in target_path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ASSETS.parent / "models" / "baseline")
    matcher = AnchorMatcher(tok, kept)
    unique = json.loads(world_path.read_text())["target"]["unique_terms"]
    # a unique term that is also a word of some translation may legitimately remain
    translations = " ".join(kept.translations())
    unique = [t for t in unique if not re.search(rf"(?<!\w){re.escape(t)}(?!\w)", translations)]
    assert unique
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, unique)) + r")(?!\w)")
    left = set()
    for k in range(0, min(len(paragraphs), 150), 10):
        ids = tok("\n\n".join(paragraphs[k:k + 10]))["input_ids"]
        tr = translate_block(ids, tok, matcher, rng=random.Random(k))
        assert tr.spans
        left |= set(pattern.findall(plain(tok, tr.translated_ids)))
    assert left == set(), f"untranslated unique terms: {sorted(left)}"


def test_rule3_forbids_the_targets_own_one_word_terms_everywhere(sp_tok):
    """Rule 3 (opt-in extension): the first token of each one-word key is forbidden at every
    position, on top of rule 2; multi-word keys and tokens that begin a translation are not."""
    anchors = AnchorDictionary({"Harry": ["Jon"], "Hogwarts": ["Mystic Academy"],
                                "Harry Potter": ["Jon Smith"], "Ron": ["Mark", "Sir Ron"]})
    m = AnchorMatcher(sp_tok, anchors)
    ids = sp_tok("He met Harry and the friend")["input_ids"]
    tid = sp_tok.convert_tokens_to_ids
    # " Ron" is banned ("Sir Ron" begins with " Sir"); " Potter" only occurs in a multi-word key;
    # the possessive "Harry's" is one whole-word token here, so it is banned too
    assert m.key_first_tokens() == sorted({tid("▁Harry"), tid("▁Harry's"), tid("▁Hog"),
                                           tid("▁Ron")})
    paper = translate_block(ids, sp_tok, m, choice={"Harry": "Jon"}, rules=(1, 2))
    ours = translate_block(ids, sp_tok, m, choice={"Harry": "Jon"}, rules=(1, 2, 3))
    keys = set(m.key_first_tokens())
    assert all(set(f) == set(g) | keys for f, g in zip(ours.forbidden, paper.forbidden,
                                                         strict=True))
    assert tid("▁Jon") in ours.forbidden[-1] and tid("▁Jon") not in ours.forbidden[0]
    assert ours.mapping == paper.mapping and ours.translated_ids == paper.translated_ids
    # a key token that also begins a translation stays allowed: the dictionary offers it
    shared = AnchorMatcher(sp_tok, AnchorDictionary({"Harry": ["Jon"], "Jon": ["Mark"]}))
    assert shared.key_first_tokens() == sorted({tid("▁Harry"), tid("▁Harry's")})  # no "▁Jon"

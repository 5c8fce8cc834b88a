"""The nano model's vocabulary and tokenizer: a fixed word-level vocabulary, one digit per token.

Text is cut into pieces by one regex (`PIECE_PATTERN`), the same in Python (`split_pieces`, used by the
data generators to count tokens exactly without a tokenizer) and in the HF `tokenizers` pipeline
(a `Split` pre-tokenizer), and every piece is one vocabulary entry:

    " ?[A-Za-z_]+"       a word, with the single space before it if there is one ("the", " the")
    " ?[^\\sA-Za-z0-9_]"  one punctuation character, with its leading space ("(", " (")
    "[0-9]"              one digit, never with a space: a 5-digit pass key is 5 tokens
    "\\n", " "            a newline; a space not followed by a word or punctuation

So " the pass key is 12345 ." is [" the", " pass", " key", " is", " ", "1", "2", "3", "4", "5", " ."].
Decoding concatenates pieces (`decoders.Fuse`), so decode(encode(text)) == text for in-vocabulary text.
The post-processor prepends <bos>; ids: <bos>=0, <eos>=1, <pad>=2, <unk>=3, then digits, whitespace,
punctuation, words (sorted). The vocabulary is a pure function of the word lists below: deterministic.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

PIECE_PATTERN = r" ?[A-Za-z_]+| ?[^\sA-Za-z0-9_]|[0-9]|\n| "
_PIECE_RE = re.compile(PIECE_PATTERN)

SPECIAL_TOKENS = ("<bos>", "<eos>", "<pad>", "<unk>")
BOS_ID, EOS_ID, PAD_ID, UNK_ID = 0, 1, 2, 3
DIGITS = tuple("0123456789")
PUNCTUATION = tuple(c for c in string.punctuation if c != "_")
LETTERS = tuple(string.ascii_lowercase)

# ---- word lists used by workbench.nano.data (the generators may only use words listed here) ----
DETERMINERS = ("the", "a", "every", "some", "this", "that", "my", "our", "their", "one", "no")
ADJECTIVES = (
    "old young quiet bright dark small large green red blue cold warm tall short quick slow happy sad "
    "gentle brave calm busy empty heavy soft loud wild little long round strange clever tired hungry "
    "distant ancient silent golden wooden narrow wide"
).split()
NOUNS = (
    "farmer teacher child river mountain city forest village road garden window door ship train letter "
    "book song storm winter summer morning evening king queen doctor painter sailor soldier student bird "
    "horse dog cat fish tree flower stone bridge tower market house field lake island valley cloud wind "
    "fire lamp clock table chair bottle basket coat boat wall hill street friend neighbor stranger"
).split()
TRANSITIVE_VERBS = (
    "sees finds carries builds opens closes paints watches follows visits helps remembers reads writes "
    "sells buys cleans moves holds leaves calls meets fixes loves"
).split()
INTRANSITIVE_VERBS = (
    "walks sleeps waits sings runs rests smiles listens falls rises wanders travels laughs works stays"
).split()
PREPOSITIONS = "near under over behind beside across through into from toward along past above below inside".split()
ADVERBS = "slowly quickly quietly often always never again early late together carefully happily soon".split()
CONJUNCTIONS = ("and", "but", "while", "because", "so", "when")
PRONOUNS = ("he", "she", "it", "they", "we", "you", "there", "then")
# Keys for associative recall and items for copying: disjoint from the prose words above.
KEY_WORDS = (
    "apple banana cherry grape lemon mango melon olive peach pear plum berry lime kiwi fig "
    "amber azure coral crimson indigo ivory jade khaki lilac maroon navy ochre pink ruby scarlet teal violet "
    "badger beaver camel cobra crane eagle falcon ferret gecko heron hyena ibis jackal koala lemur llama "
    "lynx moose newt otter panda parrot puma raven robin salmon seal shark sloth snake swan tiger toad "
    "trout turtle viper walrus whale wolf yak zebra cobalt copper iron nickel zinc tin bronze opal pearl "
    "quartz topaz onyx banjo cello drum flute harp lute oboe piano tuba violin"
).split()
CODE_KEYWORDS = (
    "def return if else elif for in while not and or None True False print assert range len append "
    "pass break continue import from as class self lambda is"
).split()
CODE_FUNCTIONS = (
    "compute_total find_max count_items scale_values merge_lists filter_even load_data parse_line "
    "update_state check_limit build_index sum_squares apply_rate clamp_value reverse_list"
).split()
CODE_VARIABLES = (
    "items values data result total count index limit factor rate value item key name line node size step "
    "offset left right acc buf"
).split()
CODE_CONSTANTS = (
    "alpha beta gamma delta width height depth speed price weight score level timeout retries capacity "
    "threshold budget margin quota scale bias epochs batch seed"
).split()
TEMPLATE_WORDS = ("what", "is", "pass", "key", "remember", "sequence", "copy", "recall")


def vocabulary_words() -> list[str]:
    """Every word (letters/underscore only) the generators may emit, sorted and deduplicated."""
    groups = (DETERMINERS, ADJECTIVES, NOUNS, TRANSITIVE_VERBS, INTRANSITIVE_VERBS, PREPOSITIONS, ADVERBS,
              CONJUNCTIONS, PRONOUNS, KEY_WORDS, CODE_KEYWORDS, CODE_FUNCTIONS, CODE_VARIABLES,
              CODE_CONSTANTS, TEMPLATE_WORDS, LETTERS)
    words = sorted({w for group in groups for w in group})
    bad = [w for w in words if not re.fullmatch(r"[A-Za-z_]+", w)]
    if bad:
        raise ValueError(f"vocabulary words must be letters/underscore only: {bad}")
    return words


def build_vocab() -> dict[str, int]:
    """piece -> id. Specials, digits, whitespace, punctuation (bare and space-led), words (bare and space-led)."""
    pieces: list[str] = [*SPECIAL_TOKENS, *DIGITS, " ", "\n"]
    pieces += [p for c in PUNCTUATION for p in (c, " " + c)]
    pieces += [p for w in vocabulary_words() for p in (w, " " + w)]
    if len(set(pieces)) != len(pieces):
        raise ValueError("duplicate vocabulary pieces")
    return {p: i for i, p in enumerate(pieces)}


def split_pieces(text: str) -> list[str]:
    """Cut text into token pieces exactly as the HF tokenizer does; raise on characters no piece covers."""
    pieces = _PIECE_RE.findall(text)
    if sum(map(len, pieces)) != len(text):
        raise ValueError(f"text has characters outside the nano alphabet: {text[:80]!r}")
    return pieces


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The nano tokenizer as a PreTrainedTokenizerFast (WordLevel model, regex pre-tokenizer, <bos> prepended)."""
    vocab = build_vocab()
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(PIECE_PATTERN), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", BOS_ID)])
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        clean_up_tokenization_spaces=False, model_max_length=1 << 20)


def save_tokenizer(out_dir: str | Path) -> PreTrainedTokenizerFast:
    """Write tokenizer.json + tokenizer_config.json to out_dir (AutoTokenizer.from_pretrained(out_dir) loads it)."""
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer

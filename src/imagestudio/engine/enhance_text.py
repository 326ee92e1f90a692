"""*Improve prompt*'s texts: the system prompts, the chat format, and cleaning what the model answers.

The output is made safe whatever the model says (the tiny test models say random tokens): decoded
without special tokens, Qwen3 ``<think>`` blocks and preambles removed, one paragraph, bounded length.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

Language = Literal["en", "ru"]

#: Answers shorter than this (in characters) are not a usable prompt.
MIN_USABLE_CHARS = 3

# ------------------------------------------------------------------------------------------ prompts

_GENERATE_EN = (
    "You turn short image ideas into prompts for Z-Image-Turbo, a text-to-image model that follows long, "
    "literal, detailed descriptions. Rewrite the user's idea as one paragraph of 60 to 150 words that "
    "describes the picture concretely: the main subject and how it looks, what it is doing, the setting "
    "and background, composition and framing, lighting, colours, and the medium or style (photograph, "
    "illustration, oil painting, 3D render...). Keep every detail the user gave and never contradict it; "
    "add only plausible visual details. Text that must appear in the image stays exactly as given, in "
    "quotation marks. Describe only what can be seen. Answer in English with the prompt alone: no "
    "introduction, no title, no list, no comments."
)
_GENERATE_RU = (
    "Ты превращаешь короткие идеи картинок в промпты для Z-Image-Turbo — модели, которая рисует по "
    "длинным, буквальным, подробным описаниям. Перепиши идею пользователя одним абзацем из 60–150 слов, "
    "конкретно описав картинку: главный объект и как он выглядит, что он делает, место и фон, композицию "
    "и кадр, освещение, цвета, технику или стиль (фотография, иллюстрация, масло, 3D-рендер…). Сохрани "
    "все детали пользователя и не противоречь им; добавляй только правдоподобные видимые детали. Текст, "
    "который должен быть на картинке, оставь дословно, в кавычках. Описывай только то, что видно. Отвечай "
    "по-русски и только самим промптом: без вступления, заголовка, списков и комментариев."
)
_EDIT_EN = (
    "You rewrite short image-editing instructions for Qwen-Image-Edit, a model that edits the pictures it "
    "is given; the user's pictures are attached as Picture 1, Picture 2, Picture 3. Rewrite the "
    "instruction as one clear, specific instruction of one to three sentences: what to change, where, "
    "and exactly how it should look, and what must stay the same (the person's identity, pose, "
    'composition, the rest of the picture). Refer to the inputs as "Picture 1", "Picture 2", '
    '"Picture 3" when there is more than one. Text to be written in the picture stays exactly as given, '
    "in quotation marks. It must remain an instruction, not a description of the result. Answer in "
    "English with the instruction alone: no introduction, no list, no comments."
)
_EDIT_RU = (
    "Ты переписываешь короткие инструкции редактирования картинок для Qwen-Image-Edit — модели, которая "
    "редактирует данные ей картинки; картинки пользователя приложены как Picture 1, Picture 2, Picture 3. "
    "Перепиши инструкцию в одну ясную, конкретную инструкцию из одного–трёх предложений: что изменить, "
    "где и как именно это должно выглядеть, и что должно остаться прежним (лицо человека, поза, "
    "композиция, остальная картинка). Если картинок несколько, называй их «Picture 1», «Picture 2», "
    "«Picture 3». Текст, который нужно написать на картинке, оставь дословно, в кавычках. Это должна "
    "остаться инструкция (повелительное наклонение), а не описание результата. Отвечай по-русски и только "
    "самой инструкцией: без вступления, списков и комментариев."
)


def system_prompt(task: str, language: Language) -> str:
    """The system prompt for a model's task ("text-to-image" or "edit") in the answer's language."""
    if task == "edit":
        return _EDIT_RU if language == "ru" else _EDIT_EN
    return _GENERATE_RU if language == "ru" else _GENERATE_EN


def detect_language(text: str) -> Language:
    """Russian when most letters are Cyrillic, else English (the two languages the studio speaks)."""
    letters = [ch for ch in text if ch.isalpha()]
    cyrillic = sum(1 for ch in letters if "CYRILLIC" in unicodedata.name(ch, ""))
    return "ru" if letters and cyrillic * 2 >= len(letters) else "en"


#: Qwen's own chat format (ChatML), used when a tokenizer ships no chat template.
_FALLBACK_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}{%- endif %}"
)


def render_chat(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The chat as the model was trained to read it, thinking turned off (Qwen3's ``enable_thinking``).

    Qwen2.5-VL's template ignores ``enable_thinking``; a tokenizer without a template gets ChatML.
    """
    template = None if getattr(tokenizer, "chat_template", None) else _FALLBACK_TEMPLATE
    rendered: str = tokenizer.apply_chat_template(
        messages,
        chat_template=template,
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    return rendered


# ------------------------------------------------------------------------------------ the cleanup

_THINK_BLOCK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_SPECIAL_TOKEN = re.compile(r"<\|[^<>|]{1,40}\|>|</?think>")
_PREAMBLE = re.compile(
    r"^\s*(?:here(?:'s| is)[^:\n]{0,60}:|sure[,!.][^:\n]{0,60}:|"
    r"(?:improved|enhanced|rewritten|detailed|new|final)?\s*(?:prompt|instruction)\s*[:：]|"
    r"(?:вот|конечно)[^:\n]{0,60}:|(?:улучшенный|новый|подробный|итоговый)?\s*(?:промпт|инструкция)\s*[:：])",
    re.IGNORECASE,
)
_QUOTES = "\"'`«»“”„*# "


def clean_output(text: str, max_chars: int) -> str:
    """One paragraph of plain text from whatever the model produced ("" when nothing usable is left).

    Thinking blocks (an unclosed one runs to the end), special tokens, replacement and control characters,
    a leading "Here is the prompt:" and wrapping quotes or markdown go; lines are joined; the result is
    cut at a word boundary to ``max_chars``.
    """
    text = _THINK_BLOCK.sub(" ", text)
    text = _SPECIAL_TOKEN.sub(" ", text)
    text = "".join(
        ch if ch in "\n\t" or not unicodedata.category(ch).startswith("C") else " "
        for ch in text.replace("\ufffd", " ")
    )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]  # "Here is a more detailed prompt:" on a line of its own
    text = " ".join(" ".join(lines).split())
    text = _PREAMBLE.sub("", text, count=1).strip(_QUOTES)
    if len(text) > max_chars:
        cut = text[:max_chars]
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return text.strip()


def usable(text: str) -> bool:
    return len(text) >= MIN_USABLE_CHARS and sum(ch.isalpha() for ch in text) >= MIN_USABLE_CHARS


def last_sentence_end(text: str) -> str:
    """Text cut short by a limit, up to its last complete sentence (when there is one)."""
    ends = [text.rfind(mark) for mark in (". ", "! ", "? ", "。")]
    end = max(ends)
    if text.endswith((".", "!", "?")) or end < len(text) // 3:
        return text
    return text[: end + 1]

"""Conversations as every layer sees them: message normalisation (once) and the context window a
conversation must fit. Neutral ground below chat and the engines, so neither imports the other."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import PipelineError

ROLES = ("system", "user", "assistant")
# Engines that cannot count tokens (servers) get this many characters of conversation: about
# 6,000 tokens of text, which leaves room for a page's image tokens in an 8k-token context.
DEFAULT_CONTEXT_CHARACTERS = 24_000


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or OpenAI / Gradio parts (images and files dropped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, (list, tuple)):
        raise PipelineError("bad_messages", "A message's content is text or a list of parts.")
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return "\n".join(p.strip() for p in parts if p.strip())


def normalise_conversation(messages: list[dict]) -> list[dict]:
    """OpenAI / Gradio messages -> [{"role", "content": text}]; images and files are dropped (the page
    is the conversation's one image), empty messages too. The last message must be a user's."""
    if not isinstance(messages, (list, tuple)):
        raise PipelineError("bad_messages", "messages must be a list of {role, content} objects.")
    conversation = []
    for message in messages:
        if not isinstance(message, dict):
            raise PipelineError("bad_messages", "Each message must be an object with a role and content.")
        role = message.get("role")
        if role not in ROLES:
            raise PipelineError("bad_messages", f"Unknown message role {role!r}: use system, user or assistant.")
        text = message_text(message.get("content"))
        if text:
            conversation.append({"role": role, "content": text})
    if not conversation or conversation[-1]["role"] != "user":
        raise PipelineError("bad_messages", "The last message must be the user's question, with text.")
    return conversation


@dataclass(frozen=True)
class ContextWindow:
    """How much a conversation's messages may cost, and how to count it."""

    limit: int  # units the messages may use (the context less the image, template and answer)
    unit: str  # "tokens" or "characters"
    count: Callable[[str], int] = len
    per_message: int = 0  # units each message costs beyond its text (role markers of the template)
    context: int | None = None  # the model's whole context, where known

    def cost(self, message: dict) -> int:
        return self.count(message["content"]) + self.per_message


def character_window(limit: int = DEFAULT_CONTEXT_CHARACTERS) -> ContextWindow:
    return ContextWindow(limit=limit, unit="characters", count=len)

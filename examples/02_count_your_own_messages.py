"""Count an OpenAI and an Anthropic request built in code, and read the normalized model.

python examples/02_count_your_own_messages.py
"""

from __future__ import annotations

import ctxtax

openai_messages = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
report = ctxtax.audit(openai_messages, model="gpt-4")
print(f"OpenAI, gpt-4: {report.total_tokens} tokens, exact={report.accuracy.exact}")

report = ctxtax.audit(
    [{"role": "user", "content": "What is the capital of France?"}],
    system="You are a terse assistant.",
    model="claude-haiku-4-5",
)
print(f"Anthropic, claude-haiku-4-5: {report.total_tokens} tokens ({report.accuracy.reason})")

ctx = ctxtax.load(openai_messages)
print([(m.role, [p.kind for p in m.parts]) for m in ctx.messages])
assert ctxtax.write(ctx) == openai_messages  # nothing edited: the payload comes back equal

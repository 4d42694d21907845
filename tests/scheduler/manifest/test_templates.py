"""The quick paths for literal and plain-lookup templates render exactly as Jinja2 does."""

from __future__ import annotations

import pytest

from scheduler.manifest.templates import Template, base_context, make_environment


@pytest.mark.parametrize(
    "source",
    [
        "plain text",
        "plain\r\ntext\n",
        "{{ a }}/{{ b }}.png",
        "x {{a}}\r\n",
        "{{ a }}}",
        "{{- a }} and {{ a -}} x",
        "a }} b {{ a }}",
        "{{ true }} {{ none }}",
        "{{ a | upper }}{% if b is none %}!{% endif %}",
        "{{ n + 1 }}",
    ],
)
def test_same_output_as_jinja(source: str) -> None:
    env = make_environment()
    context = base_context(env)
    context.update(a="A", b=None, n=2)
    assert Template(env, source).render(context) == env.from_string(source).render(context)


def test_names_exclude_globals() -> None:
    env = make_environment()
    assert Template(env, "{{ a }}{% for i in range(2) %}{{ b }}{% endfor %}").names == {"a", "b"}
    assert Template(env, "{{ a }} {{ range }}").names == {"a"}
    assert Template(env, "no names").names == frozenset()

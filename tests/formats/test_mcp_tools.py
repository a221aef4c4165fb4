"""The tool-definition reader: MCP dumps, JSON-RPC, bare arrays, LiveMCPBench, writing back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxtax._model import Context, ToolSpec
from ctxtax.errors import InputError
from ctxtax.formats import anthropic, load_all, mcp_tools, openai_chat
from ctxtax.formats._document import Document, as_document, read_path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats" / "mcp_tools"
REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"

WEATHER = json.loads((FIXTURES / "dump.json").read_text())["tools"][0]


def _doc(name: str) -> Document:
    return read_path(FIXTURES / name)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("dump.json", "dump"),
        ("jsonrpc_tools_list.json", "jsonrpc"),
        ("openai_tools.json", "openai_list"),
        ("anthropic_tools.json", "anthropic_list"),
        ("livemcpbench_tools.json", "livemcpbench"),
    ],
)
def test_detect_and_round_trip(name: str, shape: str) -> None:
    doc = _doc(name)
    assert mcp_tools.detect(doc)
    assert not openai_chat.detect(doc) and not anthropic.detect(doc)
    (ctx,) = load_all(FIXTURES / name, format="mcp_tools")
    assert ctx.meta["shape"] == shape
    assert ctx.messages == () and ctx.source_format == "mcp_tools"
    assert mcp_tools.write(ctx) == doc.value


def test_not_claimed() -> None:
    messages = [{"role": "user", "content": "hi"}]
    body = {"model": "gpt-4o", "messages": messages, "tools": [{"type": "function",
            "function": {"name": "f", "parameters": {}}}]}  # fmt: skip
    for value in (messages, body, {"tools": []}, [], {"name": "x"}, [{"name": "x"}], "text"):
        assert not mcp_tools.detect(as_document(value))


def test_dump_reads_mcp_tools_with_their_server() -> None:
    (ctx,) = load_all(FIXTURES / "dump.json", format="mcp_tools")
    assert ctx.title == "weather"
    assert [t.name for t in ctx.tools] == ["get_weather", "get_forecast"]
    weather = ctx.tools[0]
    assert weather.shape == "mcp" and weather.server == "weather"
    assert weather.description == "Current weather for a city."
    assert weather.parameters["required"] == ["city"]
    # the whole object stays: annotations, outputSchema and _meta weigh on a token count
    assert weather.raw["outputSchema"]["properties"]["temp_c"] == {"type": "number"}
    assert weather.raw["annotations"]["readOnlyHint"] is True
    assert ctx.meta["servers"] == ["weather"]


def test_jsonrpc_response_and_file_stem_title() -> None:
    (ctx,) = load_all(FIXTURES / "jsonrpc_tools_list.json", format="mcp_tools")
    assert ctx.title == "jsonrpc_tools_list"
    assert [t.server for t in ctx.tools] == [None, None]


def test_single_tool_and_bare_list_in_memory() -> None:
    (one,) = load_all(WEATHER, format="mcp_tools")
    assert one.meta["shape"] == "tool" and one.title is None
    assert mcp_tools.write(one) == WEATHER
    (many,) = load_all([WEATHER, WEATHER | {"name": "mcp__geo__lookup"}], format="mcp_tools")
    assert many.meta["shape"] == "mcp_list"
    assert [t.server for t in many.tools] == [None, "geo"]


def test_openai_and_anthropic_arrays_reuse_their_readers() -> None:
    (oa,) = load_all(FIXTURES / "openai_tools.json", format="mcp_tools")
    assert [t.shape for t in oa.tools] == ["openai", "openai"]
    assert [t.server for t in oa.tools] == ["weather", None]
    (an,) = load_all(FIXTURES / "anthropic_tools.json", format="mcp_tools")
    assert [t.shape for t in an.tools] == ["anthropic", "anthropic"]
    assert an.tools[0].server == "github" and an.tools[0].parameters["required"] == ["title"]
    assert an.tools[1].name == "web_search"


def test_livemcpbench_servers() -> None:
    (ctx,) = load_all(FIXTURES / "livemcpbench_tools.json", format="mcp_tools")
    assert ctx.title == "livemcpbench_tools"
    assert [(t.server, t.name) for t in ctx.tools] == [
        ("weather", "get_weather"),
        ("weather", "get_forecast"),
        ("filesystem", "read_file"),
    ]
    assert ctx.tools[2].description == ""  # "description": null


def test_write_after_edits() -> None:
    (ctx,) = load_all(FIXTURES / "dump.json", format="mcp_tools")
    shorter = ctx.tools[0].model_copy(update={"description": "Weather."})
    edited = ctx.model_copy(update={"tools": (shorter,)})
    out = mcp_tools.write(edited)
    assert out["server_info"] == {"name": "weather", "version": "1.2.0"}
    (tool,) = out["tools"]
    assert tool["description"] == "Weather."
    assert tool["annotations"] == WEATHER["annotations"]  # the rest of the object is kept
    new = mcp_tools.write_tool(ToolSpec(name="ping"))
    assert new == {"name": "ping", "inputSchema": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"tools": [WEATHER] * 50 + [{"name": "bad", "inputSchema": "x"}]}, "tool 50 (bad)"),
        ({"tools": [WEATHER] * 50 + [7]}, "tool 50 has no name"),
        ([{"name": "s", "tools": {"k": {"tools": [WEATHER]}}}] * 50 + [{"x": 1}], "server 50"),
    ],
)
def test_bad_tools_beyond_the_detection_scan(value: object, expected: str) -> None:
    doc = Document("json", value, source="tools.json")
    assert mcp_tools.detect(doc)
    with pytest.raises(InputError) as info:
        mcp_tools.read(doc)
    assert expected in str(info.value) and "tools.json" in str(info.value)


# -- real dumps -----------------------------------------------------------------------------------

SNAPSHOTS = {
    "cloudflare-browser.json": ("cloudflare-browser", 5),
    "cloudflare-docs.json": ("cloudflare-docs", 2),
    "cloudflare-radar.json": ("cloudflare-radar", 19),
    "mcp-server-fetch.json": ("mcp-fetch", 1),
    "server-filesystem.json": ("secure-filesystem-server", 14),
    "server-github.json": ("github-mcp-server", 26),
    "server-memory.json": ("memory-server", 9),
    "server-puppeteer.json": ("example-servers/puppeteer", 7),
}


def _real(*parts: str) -> Path:
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (../shared/data/real/{'/'.join(parts)})")
    return path


def _check_real(path: Path) -> Context:
    doc = read_path(path)
    assert mcp_tools.detect(doc)
    assert not openai_chat.detect(doc) and not anthropic.detect(doc)
    (ctx,) = load_all(path, format="mcp_tools")
    assert mcp_tools.write(ctx) == doc.value
    return ctx


@pytest.mark.parametrize(("name", "expected"), SNAPSHOTS.items())
def test_real_snapshots(name: str, expected: tuple[str, int]) -> None:
    ctx = _check_real(_real("mcp-tool-snapshots", name))
    assert (ctx.title, len(ctx.tools)) == expected
    assert all(t.server == expected[0] and t.shape == "mcp" for t in ctx.tools)


def test_real_filesystem_keeps_output_schemas() -> None:
    ctx = _check_real(_real("mcp-tool-snapshots", "server-filesystem.json"))
    assert sum("outputSchema" in t.raw for t in ctx.tools) == 14


def test_real_github_tools_list() -> None:
    ctx = _check_real(_real("github-mcp-server", "tools_list.json"))
    assert ctx.title == "tools_list" and len(ctx.tools) == 117
    assert len({t.name for t in ctx.tools}) == 117
    assert all(t.server is None for t in ctx.tools)


def test_real_github_toolsnaps() -> None:
    folder = _real("github-mcp-server", "toolsnaps")
    paths = sorted(folder.glob("*.json"))
    assert len(paths) == 117
    for path in paths:
        ctx = _check_real(path)
        assert ctx.meta["shape"] == "tool" and len(ctx.tools) == 1
        assert ctx.title == path.stem
    (flagged,) = load_all(folder / "find_duplicate_ff_duplicate_detection.json", format="mcp_tools")
    assert flagged.tools[0].name == "find_duplicate"


def test_real_livemcpbench_tools() -> None:
    ctx = _check_real(_real("livemcpbench", "tools.json"))
    assert ctx.meta["shape"] == "livemcpbench"
    assert len(ctx.tools) == 527
    assert len(ctx.meta["servers"]) == 70
    assert sum(t.server == "playwright" for t in ctx.tools) == 32
    assert sum("outputSchema" in t.raw for t in ctx.tools) == 104


def test_real_livemcpbench_conversations_are_not_tool_dumps() -> None:
    doc = read_path(_real("livemcpbench", "baseline_output_claude-sonnet-4.json"))
    assert not mcp_tools.detect(doc)


def test_empty_jsonrpc_list_and_request_bodies() -> None:
    empty = {"jsonrpc": "2.0", "id": 1, "result": {"tools": []}}
    (ctx,) = mcp_tools.read(as_document(empty))
    assert ctx.tools == () and mcp_tools.write(ctx) == empty
    responses_body = {"model": "gpt-4.1", "input": "hi", "tools": [{"type": "function",
                      "function": {"name": "f", "parameters": {}}}]}  # fmt: skip
    assert not mcp_tools.detect(as_document(responses_body))

"""bpfsleuth's sensors, flows and command sandbox as MCP tools (`bpfsleuth mcp`).

`tools` holds the plain, typed functions (policy, executor, probe runner, budgets, audit);
`server` registers them on the official MCP SDK's `MCPServer` and serves stdio or streamable
HTTP. Nothing here asks for approval: a command the policy would hold for a responder is
refused with the policy's reason.
"""

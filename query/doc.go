// Package query is the vigil search language: it parses a query such as
//
//	src_ip:203.0.113.0/24 AND NOT outcome:success | stats count() by action
//
// into an AST (Parse) and compiles the AST to SQL for a store engine
// (Compile, with a Dialect such as DuckDB). The language itself is
// described in docs/query.md.
//
// The package emits SQL and never runs it; the store does. What it
// guarantees to the store:
//
//   - Values from the user reach the database only as '?' parameters in
//     SQL.Args; document paths too. The SQL text is made of this package's
//     own words and the column names of the fixed field table (Fields).
//   - The tenant condition comes from Request.Scope, never from the query,
//     and a zero Scope matches nothing.
//   - Parse and Compile fail with an *Error that points at the column of
//     the mistake; Caret renders it for a terminal.
package query

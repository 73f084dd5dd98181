// Package detect runs Sigma rules on events: as they are ingested, one
// event at a time, and over history.
//
// A rule file is compiled once into a matcher. Rules name the original
// fields of a log (eventName, userIdentity.arn, protoPayload.methodName),
// so a matcher reads an event's original document, in one pass for all
// the fields that the rules of its log source name, and only for events
// that some rule may match: rules are indexed by the values of the
// event's action (CloudTrail eventName, GCP methodName, Azure
// operationName) that they require, which the normalized event already
// holds.
//
// Correlation rules (event_count, value_count, temporal, …) keep their
// state in memory, bounded and keyed by group.
//
// What the package does not support is refused when a rule is loaded,
// with the file, line and reason; nothing in a rule is silently ignored.
package detect

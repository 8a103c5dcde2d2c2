// Limits on everything the webhook writes back that grows with the request. The API server calls
// the webhook before it validates a pod, so names, paths and annotation values can be megabytes
// long and lists can hold hundreds of thousands of entries: no message may echo them whole.

export const LIMITS = {
  /** Characters of one request-controlled value (a name, a path, an annotation) quoted in a message. */
  valueChars: 100,
  /** Names listed in one message ("a, b, c and 12 more"). */
  listedNames: 5,
  /** Characters of one error or warning. */
  messageChars: 1024,
  /** Warnings in one answer; the API server shows each to the user. */
  warnings: 20,
  /** Errors joined into one denial message. */
  errors: 10,
  /** Characters of one auditAnnotations value. */
  auditValueChars: 1024,
  /** Characters of the pod name a decision (and so a log line) carries: any valid name is shorter. */
  podNameChars: 253,
} as const;

/** `value`, cut to `max` characters with a note saying how much was left out. */
export function truncate(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max)}… (${value.length - max} more characters)`;
}

/** A request-controlled value as it appears in a message. */
export function shown(value: string): string {
  return truncate(value, LIMITS.valueChars);
}

/** The first few items, each shortened, then "and N more". */
export function listSome(items: readonly string[], max: number = LIMITS.listedNames): string {
  const head = items.slice(0, max).map(shown).join(', ');
  return items.length > max ? `${head} and ${items.length - max} more` : head;
}

/** At most `max` messages, each at most LIMITS.messageChars, the last one saying how many were left out. */
export function boundMessages(messages: readonly string[], max: number, noun: string): string[] {
  const kept = messages.slice(0, max).map((m) => truncate(m, LIMITS.messageChars));
  if (messages.length > max) kept.push(`and ${messages.length - max} more ${noun}`);
  return kept;
}

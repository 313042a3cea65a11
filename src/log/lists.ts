// Keeping messages readable: long lists end in "and N more", 64-character
// profile ids are shown by a prefix that NIM_MODEL_PROFILE accepts.

/** Characters of a profile id shown in messages (NIM_MODEL_PROFILE accepts any unique prefix of 4 or more). */
export const SHORT_ID_LENGTH = 8;

/** `04bc9723` for a 64-character id; shorter ids stay whole. */
export function shortId(id: string, length = SHORT_ID_LENGTH): string {
  return id.length > length ? id.slice(0, length) : id;
}

/**
 * The first `max` items joined with ", ", then "and N more" for the rest:
 * `a, b, c and 13 more`. Every item when there are at most `max + 1`
 * (saying "and 1 more" is no shorter than the item).
 */
export function someOf(items: readonly string[], max = 5, separator = ', '): string {
  if (items.length <= max + 1) return items.join(separator);
  return `${items.slice(0, max).join(separator)} and ${items.length - max} more`;
}

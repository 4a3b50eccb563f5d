// Numbers as users write them in options, shared by the CLI's flags and the
// plugin's volume options (each wraps them in its own error message).

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Bytes in a size such as `512`, `64k`, `1M`, `2GiB` (binary units); NaN if it is not one or too large to be exact. */
export function sizeInBytes(text: string): number {
  const m = /^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  const n = m ? Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]! : NaN;
  return Number.isSafeInteger(n) ? n : NaN;
}

/** A whole number written in decimal digits; NaN if it is not one or too large to be exact. */
export function wholeNumber(text: string): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  return Number.isSafeInteger(n) ? n : NaN;
}

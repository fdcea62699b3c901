/**
 * How the command line's option values are read: each parser either returns the typed value or throws
 * a UsageError that names the flag (the entry point prints it on one line and exits 2). Commander calls
 * them while parsing, so a command's logic only ever sees values that passed.
 */
import { Option } from 'commander';
import { UsageError } from './commands/io.js';

export type OutputFormat = 'text' | 'json';

/** An option that takes one of `values`: shown in --help, offered by completion, anything else refused. */
export function choiceOption<T extends string>(flags: string, description: string, values: readonly T[]): Option {
  const option = new Option(flags, description).choices(values);
  const flag = option.long ?? flags;
  // Our parser, not commander's: the same one-line message every command used before ("--x must be …").
  return option.argParser((value: string): T => {
    if ((values as readonly string[]).includes(value)) return value as T;
    throw new UsageError(`${flag} must be ${oneOf(values)}, not ${JSON.stringify(value)}`);
  });
}

function oneOf(values: readonly string[]): string {
  return values.length === 2 ? `${values[0]} or ${values[1]}` : `one of ${values.join(', ')}`;
}

/** `--output text|json`, text unless given. */
export function outputOption(description = 'output format'): Option {
  return choiceOption('--output <FORMAT>', description, ['text', 'json'] as const).default('text');
}

/** A repeatable option: every occurrence, in order. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A whole number from `min` to `max`, written plainly (no sign, exponent or leading zero). */
export function integerIn(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^[1-9]\d{0,15}$|^0$/.test(value) || Number(value) < min || Number(value) > max) throw new UsageError(`${flag} needs a number from ${min} to ${max}`);
    return Number(value);
  };
}

/** A duration such as 500ms, 30s or 2m (bare numbers are seconds), in milliseconds. */
export function durationMs(flag: string): (value: string) => number {
  return (value) => {
    const m = /^(\d{1,9})(ms|s|m)?$/.exec(value);
    if (m === null) throw new UsageError(`${flag} takes a duration such as 500ms, 30s or 2m`);
    return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  };
}

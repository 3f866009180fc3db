/** Names as the config file writes them (snake_case) and as the code does (camelCase). */

/** `first_token_ms` → `firstTokenMs`, as a type. */
export type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;

/** An object's keys camelCased (the values as they are), as a type. */
export type CamelKeys<T> = { [K in keyof T as K extends string ? Camel<K> : K]: T[K] };

/** `first_token_ms` → `firstTokenMs`. */
function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `firstTokenMs` → `first_token_ms`. */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** An object's own keys camelCased, one level deep (values, nested objects included, as they are). */
export function camelKeys<T extends object>(o: T): CamelKeys<T> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v])) as CamelKeys<T>;
}

/** An object's own keys snake_cased, one level deep. */
export function snakeKeys(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [snake(k), v]));
}

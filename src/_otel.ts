/**
 * Reaching OpenTelemetry without depending on it: through the global registry that
 * `npm:@opentelemetry/api` (1.x) keeps on `globalThis`, where Deno's built-in support
 * (`OTEL_DENO=true`) and any SDK registered with that package put their tracer provider, context
 * manager and propagator. With nothing registered, {@linkcode openTelemetry} returns undefined
 * after one property read: that is all an enqueue or a run pays when tracing is off, and no user
 * downloads an OpenTelemetry package for streaq.
 *
 * The types below are the part of the OpenTelemetry JavaScript API 1.x that streaq calls, as
 * that API defines them; its numbers (span kinds, status codes) are stable within the major
 * version the registry key names.
 *
 * @module
 */

/** The key of the registry: the API's major version is part of it. */
const REGISTRY = Symbol.for("opentelemetry.js.api.1");
/** Where a context holds its span (`trace.setSpan` of the API). */
const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");

/** `SpanKind` of the API. */
export const SPAN_KIND = { producer: 3, consumer: 4 } as const;
/** `SpanStatusCode.ERROR` of the API. */
export const STATUS_ERROR = 2;

/** Span attribute values streaq sets. */
export type Attributes = Record<string, string | number | boolean>;

/** An immutable set of values travelling with a call (a span, baggage). */
export interface OtelContext {
  getValue(key: symbol): unknown;
  setValue(key: symbol, value: unknown): OtelContext;
  deleteValue(key: symbol): OtelContext;
}

/** What identifies a span in its trace. */
export interface SpanContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
}

/** A span being recorded. */
export interface Span {
  spanContext(): SpanContext;
  setAttribute(key: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: unknown): void;
  end(): void;
}

interface SpanOptions {
  kind: number;
  attributes: Attributes;
  links?: { context: SpanContext }[];
}

interface Tracer {
  startSpan(name: string, options: SpanOptions, context: OtelContext): Span;
}

interface TextMapPropagator {
  inject(
    context: OtelContext,
    carrier: Record<string, string>,
    setter: { set(carrier: Record<string, string>, key: string, value: string): void },
  ): void;
  extract(
    context: OtelContext,
    carrier: Record<string, string>,
    getter: {
      get(carrier: Record<string, string>, key: string): string | undefined;
      keys(carrier: Record<string, string>): string[];
    },
  ): OtelContext;
}

interface ContextManager {
  active(): OtelContext;
  with<T>(context: OtelContext, fn: () => T): T;
}

/** What the registry holds once something registered itself. */
interface Registry {
  trace?: { getTracer(name: string): Tracer };
  context?: ContextManager;
  propagation?: TextMapPropagator;
}

/** The root context of a process without a context manager, as the API's `ROOT_CONTEXT`. */
class BaseContext implements OtelContext {
  readonly #values: ReadonlyMap<symbol, unknown>;
  constructor(values: ReadonlyMap<symbol, unknown> = new Map()) {
    this.#values = values;
  }
  getValue(key: symbol): unknown {
    return this.#values.get(key);
  }
  setValue(key: symbol, value: unknown): OtelContext {
    return new BaseContext(new Map(this.#values).set(key, value));
  }
  deleteValue(key: symbol): OtelContext {
    const values = new Map(this.#values);
    values.delete(key);
    return new BaseContext(values);
  }
}

const ROOT = new BaseContext();

const carrierAccess = {
  set: (carrier: Record<string, string>, key: string, value: string) => void (carrier[key] = value),
  get: (carrier: Record<string, string>, key: string) => carrier[key],
  keys: (carrier: Record<string, string>) => Object.keys(carrier),
};

/** OpenTelemetry as streaq uses it: a tracer, the active context, and trace propagation. */
export class OpenTelemetry {
  readonly #registry: Registry;
  readonly #provider: Registry["trace"];
  readonly #tracer: Tracer;

  constructor(registry: Registry & { trace: { getTracer(name: string): Tracer } }) {
    this.#registry = registry;
    this.#provider = registry.trace;
    this.#tracer = registry.trace.getTracer("streaq");
  }

  /** Whether this wraps the tracer provider the registry holds now. */
  matches(registry: Registry): boolean {
    return registry === this.#registry && registry.trace === this.#provider;
  }

  /** The context active here (the span of the request handler that enqueues, say). */
  active(): OtelContext {
    return this.#registry.context?.active() ?? ROOT;
  }

  /** A context with no span: the parent of a span that starts a trace. */
  root(): OtelContext {
    return this.active().deleteValue(SPAN_KEY);
  }

  /** `context` with `span` as its span: the parent of the spans started under it. */
  withSpan(context: OtelContext, span: Span): OtelContext {
    return context.setValue(SPAN_KEY, span);
  }

  /** The span of `context`, if it has one (a remote one, for a context from {@linkcode extract}). */
  spanIn(context: OtelContext): Span | undefined {
    return context.getValue(SPAN_KEY) as Span | undefined;
  }

  /** Starts a span under `parent`. */
  startSpan(name: string, options: SpanOptions, parent: OtelContext): Span {
    return this.#tracer.startSpan(name, options, parent);
  }

  /** Calls `fn` with `span` active, so that the spans started inside it are its children. */
  within<T>(span: Span, fn: () => T): T {
    const manager = this.#registry.context;
    return manager ? manager.with(this.withSpan(manager.active(), span), fn) : fn();
  }

  /**
   * The propagation headers of `context` (W3C `traceparent`, `tracestate`, `baggage` with
   * Deno's propagator) as one JSON object, or '' when the registered propagator wrote none.
   */
  inject(context: OtelContext): string {
    const carrier: Record<string, string> = {};
    this.#registry.propagation?.inject(context, carrier, carrierAccess);
    return Object.keys(carrier).length > 0 ? JSON.stringify(carrier) : "";
  }

  /**
   * The context that headers stored by {@linkcode inject} describe, under `base`; `base` itself
   * for headers that are not a JSON object of strings (a corrupted field must not fail a run).
   */
  extract(headers: string, base: OtelContext): OtelContext {
    let carrier: unknown;
    try {
      carrier = JSON.parse(headers);
    } catch {
      return base;
    }
    if (typeof carrier !== "object" || carrier === null || Array.isArray(carrier)) return base;
    const strings = Object.fromEntries(
      Object.entries(carrier).filter(([, value]) => typeof value === "string"),
    ) as Record<string, string>;
    return this.#registry.propagation?.extract(base, strings, carrierAccess) ?? base;
  }
}

let current: OpenTelemetry | undefined;

/**
 * OpenTelemetry if a tracer provider is registered (Deno's with `OTEL_DENO=true`, or an SDK's),
 * else undefined. Checked on every call, as an SDK may register itself after streaq is loaded;
 * with nothing registered this is one property read.
 */
export function openTelemetry(): OpenTelemetry | undefined {
  const registry = (globalThis as { [REGISTRY]?: Registry })[REGISTRY];
  if (registry?.trace === undefined) return undefined;
  if (current?.matches(registry) !== true) current = new OpenTelemetry(registry as never);
  return current;
}

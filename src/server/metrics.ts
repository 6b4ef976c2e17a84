// Prometheus text exposition (format 0.0.4) for `ikl server --metrics`: counters (`_total`), instantaneous
// gauges and cumulative histograms with `ikl_` names and units (UX.md §3 "Prometheus"); no colons (reserved for
// recording rules), so llama.cpp's `llamacpp:` names are deliberately not copied. The scheduler reports events;
// gauges that describe current state (slots, queue, KV use) are read at scrape time.

const BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

class Histogram {
    readonly counts = new Array<number>(BUCKETS_S.length).fill(0);
    sum = 0;
    n = 0;
    observe(v: number): void {
        this.sum += v;
        this.n++;
        BUCKETS_S.forEach((b, i) => {
            if (v <= b) this.counts[i] = (this.counts[i] as number) + 1;
        });
    }
}

export interface Gauges {
    slotsTotal: number;
    processing: number;
    deferred: number;
    kvTokens: number;
    nCtx: number;
}

export class Metrics {
    private c = { prompt: 0, generated: 0, cacheHit: 0, requests: 0, failed: 0, cancelled: 0, shifts: 0 };
    private readonly promptH = new Histogram();
    private readonly tokenH = new Histogram();
    private readonly requestH = new Histogram();
    private lastDeferred = 0;
    readonly started = Date.now();

    promptTokens(n: number): void {
        this.c.prompt += n;
    }
    generatedTokens(n: number): void {
        this.c.generated += n;
    }
    cacheHit(n: number): void {
        this.c.cacheHit += n;
    }
    failed(): void {
        this.c.failed++;
    }
    cancelled(): void {
        this.c.cancelled++;
    }
    contextShift(): void {
        this.c.shifts++;
    }
    deferred(n: number): void {
        this.lastDeferred = n;
    }
    /** A finished generation: prompt time, generation time (ms) and tokens generated. */
    request(promptMs: number, predictedMs: number, nGen: number): void {
        this.c.requests++;
        this.promptH.observe(promptMs / 1e3);
        if (nGen > 1) this.tokenH.observe(predictedMs / 1e3 / (nGen - 1));
        this.requestH.observe((promptMs + predictedMs) / 1e3);
    }

    get queued(): number {
        return this.lastDeferred;
    }

    render(g: Gauges): string {
        const out: string[] = [];
        const metric = (name: string, type: string, help: string, lines: string[]): void => {
            out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
        };
        const one = (name: string, type: string, help: string, v: number): void => metric(name, type, help, [`${name} ${v}`]);
        const hist = (name: string, help: string, h: Histogram): void => {
            const lines = BUCKETS_S.map((b, i) => `${name}_bucket{le="${b}"} ${h.counts[i] as number}`);
            lines.push(`${name}_bucket{le="+Inf"} ${h.n}`, `${name}_sum ${h.sum}`, `${name}_count ${h.n}`);
            metric(name, "histogram", help, lines);
        };
        one("ikl_prompt_tokens_total", "counter", "Prompt tokens evaluated.", this.c.prompt);
        one("ikl_generated_tokens_total", "counter", "Tokens generated.", this.c.generated);
        one("ikl_prompt_cache_hit_tokens_total", "counter", "Prompt tokens reused from a slot's cache.", this.c.cacheHit);
        one("ikl_requests_total", "counter", "Generations completed.", this.c.requests);
        one("ikl_requests_failed_total", "counter", "Generations ended by an error.", this.c.failed);
        one("ikl_requests_cancelled_total", "counter", "Generations cancelled by a client disconnect.", this.c.cancelled);
        one("ikl_context_shifts_total", "counter", "Context overflows handled: prompts truncated or shortened, generations shifted or re-prefilled.", this.c.shifts);
        one("ikl_requests_processing", "gauge", "Slots generating now.", g.processing);
        one("ikl_requests_deferred", "gauge", "Requests waiting for a slot.", g.deferred);
        one("ikl_slots", "gauge", "Slots (-np).", g.slotsTotal);
        one("ikl_kv_cache_tokens", "gauge", "Tokens held in the KV cache.", g.kvTokens);
        one("ikl_kv_cache_used_ratio", "gauge", "KV cache cells used / n_ctx.", g.nCtx > 0 ? g.kvTokens / g.nCtx : 0);
        metric("ikl_device_memory_used_bytes", "gauge", "Memory in use per device (CPU: resident set of the process).", [
            `ikl_device_memory_used_bytes{device="CPU"} ${process.memoryUsage().rss}`
        ]);
        hist("ikl_prompt_seconds", "Prompt processing time per request (queue excluded).", this.promptH);
        hist("ikl_token_seconds", "Time per generated token.", this.tokenH);
        hist("ikl_request_seconds", "Request latency from slot assignment to the last token.", this.requestH);
        return `${out.join("\n")}\n`;
    }
}

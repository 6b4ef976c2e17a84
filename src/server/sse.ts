// Server-sent events exactly as OpenAI frames them: `data: <json>\n\n` per event, `data: [DONE]\n\n` to end the
// OpenAI endpoints (the native /completion stream has no terminator, like the reference), `: ping` comments while
// nothing else is sent (long prompt processing), and a cancel hook that fires when the client goes away.

const enc = new TextEncoder();

export class SseStream {
    readonly response: Response;
    private controller!: ReadableStreamDefaultController<Uint8Array>;
    private closed = false;
    private lastSend = Date.now();
    private readonly ping: NodeJS.Timeout | undefined;

    constructor(onCancel: () => void, pingMs: number, headers: Record<string, string> = {}) {
        const body = new ReadableStream<Uint8Array>({
            start: (c) => {
                this.controller = c;
            },
            cancel: () => {
                this.stop();
                onCancel();
            }
        });
        this.response = new Response(body, {
            status: 200,
            headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no", ...headers }
        });
        if (pingMs > 0) {
            this.ping = setInterval(() => {
                if (Date.now() - this.lastSend >= pingMs) this.write(": ping\n\n");
            }, Math.max(50, Math.floor(pingMs / 2)));
            this.ping.unref();
        }
    }

    private write(s: string): void {
        if (this.closed) return;
        this.lastSend = Date.now();
        try {
            this.controller.enqueue(enc.encode(s));
        } catch {
            this.stop();
        }
    }

    private stop(): void {
        this.closed = true;
        if (this.ping !== undefined) clearInterval(this.ping);
    }

    send(obj: unknown): void {
        this.write(`data: ${JSON.stringify(obj)}\n\n`);
    }

    /** Ends the stream, after `data: [DONE]` when `done` is set (OpenAI endpoints). */
    end(done: boolean): void {
        if (done) this.write("data: [DONE]\n\n");
        if (this.closed) return;
        this.stop();
        try {
            this.controller.close();
        } catch {
            // already closed by the client
        }
    }
}

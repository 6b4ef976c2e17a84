// HTTP errors of `ikl server` in OpenAI's shape (spec/server.md §3): {"error":{"code","message","type"}} with the
// HTTP status equal to `code`. ApiError is what route handlers and the scheduler throw; toApiError() maps any
// other failure (engine IklError, a bug) onto the same shape so a request never ends without a JSON answer.
import { IklError } from "../engine/errors.js";

export type ErrorType =
    | "invalid_request_error"
    | "authentication_error"
    | "not_found_error"
    | "server_error"
    | "not_supported_error"
    | "unavailable_error";

export type Status = 400 | 401 | 404 | 413 | 429 | 500 | 501 | 503;

export class ApiError extends Error {
    constructor(readonly status: Status, readonly type: ErrorType, message: string) {
        super(message);
        this.name = "ApiError";
    }

    body(): { error: { code: number; message: string; type: ErrorType } } {
        return { error: { code: this.status, message: this.message, type: this.type } };
    }
}

export function badRequest(message: string): ApiError {
    return new ApiError(400, "invalid_request_error", message);
}

export function notSupported(message: string): ApiError {
    return new ApiError(501, "not_supported_error", message);
}

/** Any thrown value → ApiError: engine input errors are 400, everything else 500 with its message. */
export function toApiError(e: unknown): ApiError {
    if (e instanceof ApiError) return e;
    if (e instanceof IklError) {
        if (e.code === "IKL_E_INVALID" || e.code === "IKL_E_TEMPLATE" || e.code === "IKL_E_USAGE") return badRequest(e.message);
        if (e.code === "IKL_E_UNSUPPORTED") return notSupported(e.message);
        return new ApiError(500, "server_error", e.message);
    }
    return new ApiError(500, "server_error", e instanceof Error ? e.message : String(e));
}

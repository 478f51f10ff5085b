import ArgumentParser

/// Exit codes a scheduler can act on; the runbooks in `Jobs/RUNBOOK.md` say what each means.
enum ExitStatus: Int32 {
    /// Done, nothing rejected.
    case ok = 0
    /// Something unexpected; read the log line with level "error".
    case failure = 1
    /// Bad arguments or a bad input value (a usage error).
    case usage = 2
    /// The work was done but rows were rejected, or a snapshot was refused: a human must look.
    case rejected = 3
    /// A feed could not be reached or read.
    case feedUnreachable = 4
    /// The database was unavailable: nothing was decided or loaded.
    case databaseUnavailable = 5
    /// Another run holds the lock; this run did nothing.
    case busy = 6
    /// The audit chain does not verify: a record was changed, removed or reordered.
    case tamperDetected = 7

    var exitCode: ExitCode { ExitCode(rawValue) }
}

import ArgumentParser
import BloodMatchService
import BloodMatchStore
import Foundation

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

/// A command that cannot do its work: a bad value it was given (a file's content, a combination of
/// options: exit 2, a usage error) or a failure of its surroundings (a folder it cannot create, a
/// file it cannot write, standard output lost: exit 1). The message names the file or value.
struct ValidationFailure: Error, CustomStringConvertible, ClassifiedError {
    var description: String
    var exitStatus: ExitStatus
    /// A bad value given to the command: exit 2.
    init(_ message: String) { (description, exitStatus) = (message, .usage) }
    /// The command's surroundings failed it (file system, output): exit 1.
    init(environment message: String) { (description, exitStatus) = (message, .failure) }
}

/// Standard output for exports: buffered, written with error checks, so a full disk under a
/// redirect fails the command (exit 1) instead of leaving an export that looks complete.
final class CheckedOutput {
    private var buffer = Data()

    /// Appends one line.
    func line(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        buffer.append(10)
        if buffer.count >= 1 << 16 { try flush() }
    }

    /// Writes what is buffered; throws when the write fails.
    func flush() throws {
        guard !buffer.isEmpty else { return }
        do {
            try FileHandle.standardOutput.write(contentsOf: buffer)
        } catch {
            throw ValidationFailure(environment: "standard output could not be written (\(error.localizedDescription)): the output is incomplete; nothing else was changed")
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

extension IdempotencyKeyReuseError: ClassifiedError {
    /// A key reused for another operation or object is refused, never answered with the other's result.
    var exitStatus: ExitStatus { .rejected }
}

extension MatchRequestError: ClassifiedError {
    /// A request that cannot be evaluated as stated (unknown hospital, an --as-of before the data).
    var exitStatus: ExitStatus { .usage }
}

extension WhatIfDecisionError: ClassifiedError {
    /// Nothing may be held on the strength of a what-if.
    var exitStatus: ExitStatus { .rejected }
}

extension ReservationStateError: ClassifiedError {
    /// The hold does not allow the change: a human must look.
    var exitStatus: ExitStatus { .rejected }
}

extension UnitLifecycleError: ClassifiedError {
    /// The unit's life does not allow the step.
    var exitStatus: ExitStatus { .rejected }
}

extension ReservationNotFoundError: ClassifiedError {
    /// A reservation id that does not exist is a bad argument.
    var exitStatus: ExitStatus { .usage }
}

extension ClockSkewError: ClassifiedError {
    /// Expiry and data age cannot be trusted: unable to verify, never an answer.
    var exitStatus: ExitStatus { .databaseUnavailable }
}

import BloodMatchStore

/// Runs `operation` and answers by `deadline` whatever it does (see `withDeadline` in the store,
/// which returns on time even when the operation ignores cancellation).
func answerWithin<T: Sendable>(_ deadline: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withDeadline(deadline, operation)
}

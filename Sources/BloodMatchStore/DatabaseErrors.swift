import PostgresNIO

/// Whether an error means the database could not be reached or the connection was lost, as
/// opposed to a query the server refused. Callers answer "unable to verify" for these.
public func isConnectionFailure(_ error: any Error) -> Bool {
    if error is DatabaseUnavailableError || error is DeadlineExceededError { return true }
    if String(reflecting: type(of: error)).contains("ConnectionPoolError") { return true }
    if let tx = error as? PostgresTransactionError {
        return [tx.beginError, tx.closureError, tx.commitError].contains { $0.map(isConnectionFailure) ?? false }
    }
    if let psql = error as? PSQLError {
        switch psql.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .poolClosed, .clientClosedConnection,
             .sslUnsupported, .failedToAddSSLHandler:
            return true
        case .server:
            // 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 08xxx connection exceptions
            let state = psql.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P")
        default:
            return false
        }
    }
    if error is CancellationError { return false }
    let text = String(reflecting: error)
    return text.contains("connect") && (text.contains("refused") || text.contains("timed out") || text.contains("No such file"))
}

/// The server's message for a refused query, or the error's own description.
public func serverMessage(_ error: any Error) -> String {
    if let tx = error as? PostgresTransactionError, let inner = tx.closureError ?? tx.commitError ?? tx.beginError {
        return serverMessage(inner)
    }
    if let psql = error as? PSQLError, let message = psql.serverInfo?[.message] {
        return message
    }
    return String(describing: error)
}

/// The SQLSTATE of a server error, if any (e.g. `23505` unique violation, `40001` serialization).
public func sqlState(_ error: any Error) -> String? {
    if let tx = error as? PostgresTransactionError, let inner = tx.closureError ?? tx.commitError ?? tx.beginError {
        return sqlState(inner)
    }
    return (error as? PSQLError)?.serverInfo?[.sqlState]
}

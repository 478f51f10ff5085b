import BloodMatchFeeds

extension FeedAddressError: ClassifiedError {
    /// A `--url` that cannot be fetched as given is a usage error.
    var exitStatus: ExitStatus { .usage }
}

extension FeedSettingsError: ClassifiedError {
    /// A feed setting that cannot be used is a usage error.
    var exitStatus: ExitStatus { .usage }
}

extension FeedFetchError: ClassifiedError {
    /// Unreachable: exit 4, the feed may answer later; refused: exit 3, a person must look.
    var exitStatus: ExitStatus { kind == .unreachable ? .feedUnreachable : .rejected }
}

extension FeedFileSystemError: ClassifiedError {
    /// This host's file system failed the run.
    var exitStatus: ExitStatus { .failure }
}

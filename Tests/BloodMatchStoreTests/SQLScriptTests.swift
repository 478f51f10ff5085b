import BloodMatchStore
import Testing

@Suite("Splitting migration scripts into statements")
struct SQLScriptTests {
    @Test func splitsOnSemicolonsOutsideQuotesCommentsAndDollarBodies() {
        let script = """
        -- comment; not a statement
        CREATE TABLE a (x text DEFAULT 'semi;colon');
        /* block; comment */
        CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'no; way'; END $$;
        SELECT "odd;name" FROM a;
        """
        let statements = SQLScript.statements(in: script)
        #expect(statements.count == 3)
        #expect(statements[0] == "CREATE TABLE a (x text DEFAULT 'semi;colon')")
        #expect(statements[1].hasSuffix("END $$"))
        #expect(statements[2] == "SELECT \"odd;name\" FROM a")
    }

    @Test func everyBundledMigrationSplitsIntoNonEmptyStatements() throws {
        for migration in try Migration.bundled() {
            let statements = SQLScript.statements(in: migration.sql)
            #expect(!statements.isEmpty)
            #expect(statements.allSatisfy { !$0.hasPrefix(";") })
        }
    }
}

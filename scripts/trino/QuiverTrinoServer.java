// The main class of the Trino server that scripts/trino.sh assembles from Maven Central parts.
// Trino's own main class, io.trino.server.TrinoServer, lives in trino-server-main, which Maven
// Central does not serve for this version; this does what it does: start io.trino.server.Server
// with the version trino-main's manifest names.
public final class QuiverTrinoServer {
    private QuiverTrinoServer() {}

    public static void main(String[] args) {
        String version = io.trino.server.Server.class.getPackage().getImplementationVersion();
        new io.trino.server.Server().start(version == null ? "unknown" : version);
    }
}

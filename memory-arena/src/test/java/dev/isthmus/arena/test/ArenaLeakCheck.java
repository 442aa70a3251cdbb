package dev.isthmus.arena.test;

import dev.isthmus.arena.MemoryArena;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * JUnit 5 extension that fails a test which leaks arena memory: every arena the test opened must be closed
 * with nothing allocated, and none may still be open with live allocations. With
 * {@code -Disthmus.arena.debug=true} (set by the build for every module's tests) the failure lists the
 * allocation sites; only debug-mode arenas are tracked (a production arena is in no static list). Use with {@code @ExtendWith(ArenaLeakCheck.class)} on any test that touches an arena;
 * the published test jar makes it available to the other modules.
 */
public final class ArenaLeakCheck implements BeforeEachCallback, AfterEachCallback {
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(ArenaLeakCheck.class);

    @Override
    public void beforeEach(ExtensionContext context) {
        MemoryArena.takeClosedWithLeaks();
        context.getStore(NS).put("before", new HashSet<>(MemoryArena.openArenas()));
    }

    @Override
    @SuppressWarnings("unchecked")
    public void afterEach(ExtensionContext context) {
        Set<MemoryArena> before = (Set<MemoryArena>) context.getStore(NS).get("before");
        StringBuilder problems = new StringBuilder();
        for (String leak : MemoryArena.takeClosedWithLeaks()) {
            problems.append("\n").append(leak);
        }
        List<MemoryArena> open = MemoryArena.openArenas();
        for (MemoryArena a : open) {
            if (before != null && before.contains(a)) {
                continue;
            }
            problems.append("\narena left open by the test: ").append(a);
            if (a.liveAllocations() > 0) {
                problems.append(" with ").append(a.liveAllocations()).append(" live allocation(s)");
            }
            if (a.isOwnerThread()) {
                a.close();
            }
        }
        if (!problems.isEmpty()) {
            throw new AssertionError("arena leak check failed in " + context.getDisplayName() + ":" + problems);
        }
    }
}

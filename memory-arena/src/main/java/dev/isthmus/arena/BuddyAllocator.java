package dev.isthmus.arena;

import java.util.Arrays;

/**
 * The buddy allocator under a {@link MemoryArena}: blocks of 64 KiB x 2^order over a region of {@code blocks}
 * 64 KiB units. Free lists are doubly linked through int arrays indexed by unit, and each block's head unit
 * holds its state (free or allocated, and its order) in a byte: no Java object per block. Allocation splits
 * the smallest sufficient free block; freeing coalesces with the buddy ({@code index ^ (1 << order)}) while
 * it is free and of the same order. O(log n) both ways.
 *
 * <p>Owner-thread only (the arena's).
 */
final class BuddyAllocator {
    static final byte FREE = (byte) 0x40;
    static final byte ALLOCATED = (byte) 0x80;
    static final int ORDER_MASK = 0x3F;

    private final int blocks;
    private final int maxOrder;
    private final int[] next;
    private final int[] prev;
    private final byte[] state;
    private final int[] heads;
    private final long[] freeCountByOrder;
    private long freeUnits;

    BuddyAllocator(int blocks) {
        if (blocks < 1) {
            throw new IllegalArgumentException("need at least one block");
        }
        this.blocks = blocks;
        this.maxOrder = 31 - Integer.numberOfLeadingZeros(blocks);
        this.next = new int[blocks];
        this.prev = new int[blocks];
        this.state = new byte[blocks];
        this.heads = new int[maxOrder + 1];
        this.freeCountByOrder = new long[maxOrder + 1];
        Arrays.fill(heads, -1);
        // Carve the region greedily into the largest aligned power-of-two blocks.
        int index = 0;
        while (index < blocks) {
            int order = index == 0 ? maxOrder : Math.min(maxOrder, Integer.numberOfTrailingZeros(index));
            while (index + (1 << order) > blocks) {
                order--;
            }
            push(index, order);
            index += 1 << order;
        }
    }

    int maxOrder() {
        return maxOrder;
    }

    int blocks() {
        return blocks;
    }

    long freeUnits() {
        return freeUnits;
    }

    long freeBlocksOfOrder(int order) {
        return freeCountByOrder[order];
    }

    /** The largest free block's order, or -1 when nothing is free. */
    int largestFreeOrder() {
        for (int o = maxOrder; o >= 0; o--) {
            if (heads[o] >= 0) {
                return o;
            }
        }
        return -1;
    }

    /** Allocates a block of {@code order}; returns its first unit index or -1 when no block is big enough. */
    int allocate(int order) {
        if (order > maxOrder) {
            return -1;
        }
        int k = order;
        while (k <= maxOrder && heads[k] < 0) {
            k++;
        }
        if (k > maxOrder) {
            return -1;
        }
        int index = heads[k];
        unlink(index, k);
        while (k > order) {
            k--;
            push(index + (1 << k), k);
        }
        state[index] = (byte) (ALLOCATED | order);
        return index;
    }

    /** The order of the allocated block starting at {@code index}, or -1 if no allocated block starts there. */
    int allocatedOrder(int index) {
        if (index < 0 || index >= blocks || (state[index] & ALLOCATED) == 0) {
            return -1;
        }
        return state[index] & ORDER_MASK;
    }

    /** Frees the allocated block at {@code index}; throws on a double free or an address that is not a block. */
    int free(int index) {
        int order = allocatedOrder(index);
        if (order < 0) {
            throw new IllegalStateException("free of unit " + index + " which is not an allocated block"
                + ((index >= 0 && index < blocks && (state[index] & FREE) != 0) ? " (double free)" : ""));
        }
        int freedOrder = order;
        state[index] = 0;
        while (order < maxOrder) {
            int buddy = index ^ (1 << order);
            if (buddy >= blocks || state[buddy] != (byte) (FREE | order)) {
                break;
            }
            unlink(buddy, order);
            state[buddy] = 0;
            index = Math.min(index, buddy);
            order++;
        }
        push(index, order);
        return freedOrder;
    }

    private void push(int index, int order) {
        int head = heads[order];
        next[index] = head;
        prev[index] = -1;
        if (head >= 0) {
            prev[head] = index;
        }
        heads[order] = index;
        state[index] = (byte) (FREE | order);
        freeCountByOrder[order]++;
        freeUnits += 1L << order;
    }

    private void unlink(int index, int order) {
        int n = next[index];
        int p = prev[index];
        if (p >= 0) {
            next[p] = n;
        } else {
            heads[order] = n;
        }
        if (n >= 0) {
            prev[n] = p;
        }
        state[index] = 0;
        freeCountByOrder[order]--;
        freeUnits -= 1L << order;
    }
}

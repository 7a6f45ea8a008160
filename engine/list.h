/* engine/list.h — intrusive circular doubly linked lists.
 * A `struct list_node` lives inside its owner; the list head is a sentinel node.
 * Nothing here allocates: insert and remove are O(1) pointer updates. */
#ifndef ANVIL_LIST_H
#define ANVIL_LIST_H

#include <stddef.h>
#include <stdbool.h>

struct list_node {
    struct list_node *next;
    struct list_node *prev;
};

#define list_entry(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void list_init(struct list_node *head)
{
    head->next = head;
    head->prev = head;
}

static inline bool list_empty(const struct list_node *head)
{
    return head->next == head;
}

/* A node not on any list points at itself, so removal is idempotent. */
static inline bool list_linked(const struct list_node *node)
{
    return node->next != node && node->next != NULL;
}

static inline void list__insert(struct list_node *node, struct list_node *prev,
                                struct list_node *next)
{
    node->prev = prev;
    node->next = next;
    prev->next = node;
    next->prev = node;
}

static inline void list_push_back(struct list_node *head, struct list_node *node)
{
    list__insert(node, head->prev, head);
}

static inline void list_push_front(struct list_node *head, struct list_node *node)
{
    list__insert(node, head, head->next);
}

static inline void list_remove(struct list_node *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node;
    node->prev = node;
}

static inline struct list_node *list_first(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

/* Moves every node of `from` to the end of `to`, leaving `from` empty. */
static inline void list_splice_back(struct list_node *to, struct list_node *from)
{
    if (list_empty(from))
        return;
    struct list_node *first = from->next, *last = from->prev;
    first->prev = to->prev;
    to->prev->next = first;
    last->next = to;
    to->prev = last;
    list_init(from);
}

#define list_for_each_safe(pos, tmp, head) \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif

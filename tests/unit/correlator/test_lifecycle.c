/*
 * test_lifecycle.c - the rectification lifecycle (correlator/lifecycle.c): the
 * whole table of moves against the one in lifecycle.h's diagram, names in both
 * languages, and the reasons of refusals (they name both states).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../../correlator/lifecycle.h"

/* The legal moves, written out as the diagram says (from, to). */
static const struct {
    incident_state from, to;
} LEGAL[] = {
    {INC_NEW, INC_ACKNOWLEDGED},
    {INC_ACKNOWLEDGED, INC_RECTIFYING},
    {INC_RECTIFYING, INC_RECTIFIED},
    {INC_RECTIFIED, INC_CLOSED},
    {INC_RECTIFIED, INC_REOPENED},
    {INC_REOPENED, INC_RECTIFYING},
    {INC_ACCEPTED_RISK, INC_RECTIFYING},
    {INC_NEW, INC_FALSE_POSITIVE},
    {INC_NEW, INC_DUPLICATE},
    {INC_NEW, INC_ACCEPTED_RISK},
    {INC_ACKNOWLEDGED, INC_FALSE_POSITIVE},
    {INC_ACKNOWLEDGED, INC_DUPLICATE},
    {INC_ACKNOWLEDGED, INC_ACCEPTED_RISK},
    {INC_RECTIFYING, INC_FALSE_POSITIVE},
    {INC_RECTIFYING, INC_DUPLICATE},
    {INC_RECTIFYING, INC_ACCEPTED_RISK},
    {INC_REOPENED, INC_FALSE_POSITIVE},
    {INC_REOPENED, INC_DUPLICATE},
    {INC_REOPENED, INC_ACCEPTED_RISK},
};

static void test_table(void **state)
{
    char why[256];
    int legal = 0;

    (void)state;
    for (int f = 0; f < INC_STATE_COUNT; f++)
        for (int t = 0; t < INC_STATE_COUNT; t++) {
            bool want = false;

            for (size_t i = 0; i < sizeof(LEGAL) / sizeof(LEGAL[0]); i++)
                want |= LEGAL[i].from == (incident_state)f && LEGAL[i].to == (incident_state)t;
            why[0] = '\0';
            if (incident_transition_ok(f, t, why, sizeof(why)) != want)
                fail_msg("%s -> %s: %s", incident_state_name(f), incident_state_name(t),
                         want ? "refused" : "allowed");
            if (!want) {
                /* every refusal names both states */
                assert_non_null(strstr(why, incident_state_name(f)));
                if (f != t)
                    assert_non_null(strstr(why, incident_state_name(t)));
            }
            legal += want;
        }
    assert_int_equal(legal, sizeof(LEGAL) / sizeof(LEGAL[0]));
}

static void test_reasons_and_names(void **state)
{
    char why[256];

    (void)state;
    assert_false(incident_transition_ok(INC_CLOSED, INC_RECTIFYING, why, sizeof(why)));
    assert_string_equal(why,
                        "an incident that is closed cannot become rectifying (closed is final)");
    assert_false(incident_transition_ok(INC_NEW, INC_RECTIFIED, why, sizeof(why)));
    assert_string_equal(why, "an incident that is new cannot become rectified (from new: "
                             "acknowledged, false_positive, duplicate, accepted_risk)");
    assert_false(incident_transition_ok(INC_RECTIFIED, INC_FALSE_POSITIVE, why, sizeof(why)));
    assert_non_null(strstr(why, "reopen it first"));
    assert_false(incident_transition_ok(INC_NEW, INC_NEW, why, sizeof(why)));
    assert_string_equal(why, "the incident is already new");
    for (int s = 0; s < INC_STATE_COUNT; s++) {
        assert_int_equal(incident_state_parse(incident_state_name(s)), s);
        assert_non_null(incident_state_name_zh(s));
    }
    assert_int_equal(incident_state_parse("resolved"), -1);
    assert_null(incident_state_name(INC_STATE_COUNT));
    assert_string_equal(incident_state_name_zh(INC_RECTIFYING), "整改中");
    assert_true(incident_state_open(INC_REOPENED));
    assert_false(incident_state_open(INC_RECTIFIED));
    assert_false(incident_state_open(INC_ACCEPTED_RISK));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_reasons_and_names),
    };
    return cmocka_run_group_tests_name("lifecycle", tests, NULL, NULL);
}

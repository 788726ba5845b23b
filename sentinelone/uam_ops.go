package sentinelone

// The GraphQL documents the client sends to the Unified Alerts endpoint.
// Each is validated, with the variables the client sends, against
// SentinelOne's schema subset (the emulator's copy, emulator.UAMSchema) by
// TestUAMOperationsValidate: a name or type the schema lacks fails
// there, not on a console.
//
// Enum values written in a document are bare literals (viewType: ALL);
// everything the caller chooses travels in variables, where enums are JSON
// strings (uam-reference.md §2).

// Operation names, sent as operationName in the body and as ?opname= on the
// URL, as the console's own web client does (uam-reference.md §1).
const (
	opListAlerts     = "ListAlerts"
	opGetAlert       = "GetAlert"
	opAlertNotes     = "AlertNotes"
	opTriggerActions = "AlertTriggerActions"
)

// uamCommonFields are the alert fields UnifiedAlert (list nodes) and
// UnifiedAlertDetail (alert(id)) share with the same types. The deprecated
// asset (singular) is not selected: assets replaces it (§10 quirk 5).
const uamCommonFields = `
    id
    externalId
    name
    description
    severity
    status
    analystVerdict
    confidenceLevel
    classification
    result
    attackSurfaces
    detectedAt
    createdAt
    firstSeenAt
    lastSeenAt
    updatedAt
    noteExists
    dataSources
    labels
    storylineId
    ticketId
    assignee { userId fullName email }
    incident { id name }
    analytics { category name typeValue uid }
    detectionSource { product vendor }
    assets {
      id name category subcategory assetTypeClassifier osType osVersion agentUuid agentVersion
      connectivityToConsole decommissioned deleted lastLoggedInUser pendingReboot policy role status origin accessible
    }
    detectionTime {
      attacker { host ip }
      targetUser { domain emailAddress name }
      scope { accountId accountName siteId siteName groupId groupName }
    }
    realTime { scope { account { id name } site { id name } group { id name } } }`

// uamListFields is the selection of a list node: the common fields plus
// the list-only ones (UnifiedAlert's process and aiInvestigation types
// differ from the detail's).
const uamListFields = uamCommonFields + `
    availableActionIds
    aiInvestigation { status verdict purpleAiStatus autoTriggered timestamp }
    process { cmdLine parentName file { name path sha1 sha256 md5 certSubject } }`

// uamDetailFields is the selection of alert(id): the common fields plus
// the detail-only ones (indicators, observables, the process owner, file
// size and signature).
const uamDetailFields = uamCommonFields + `
    selfLink
    preemptiveMitigationType
    aiInvestigation { status verdict autoTriggered timestamp }
    process {
      cmdLine parentName username userDomain userDisplayName
      file { name path size md5 sha1 sha256 certSubject certSerialNumber certExpiresAt signatureVerification }
    }
    indicators {
      uid type title message eventTime severity primary
      observables { name type typeName value }
    }
    observables { name type typeName value }`

// queryListAlerts reads one page of alerts. filters and sorts are always
// sent (filters at least carry the confidence levels, see
// UAMAlertFilter); viewType ALL is every source.
const queryListAlerts = `query ListAlerts($first: Int!, $after: String, $filters: [FilterInput!], $sorts: [SortInput!]) {
  alerts(first: $first, after: $after, filters: $filters, sorts: $sorts, viewType: ALL) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {` + uamListFields + `
      }
    }
  }
}`

// queryGetAlert reads one alert. alert(id) is non-null in the schema, so a
// missing alert is a GraphQL error, not a null (uam-reference.md §9).
const queryGetAlert = `query GetAlert($id: ID!) {
  alert(id: $id) {` + uamDetailFields + `
  }
}`

// queryAlertNotes reads every note of one alert. createdBy replaces the
// deprecated author and may be a user or an automation rule.
const queryAlertNotes = `query AlertNotes($alertId: ID!) {
  alertNotes(alertId: $alertId) {
    data {
      id alertId text type createdAt updatedAt
      createdBy {
        __typename
        ... on UserNoteAuthor { userId fullName email }
        ... on RuleNoteAuthor { id name version }
      }
    }
  }
}`

// mutationTriggerActions runs actions on the alerts its filter selects.
//
// $filter is declared non-null although the argument is nullable: a null
// filter means "every alert in scope" (uam-reference.md §7.1), and with a
// non-null variable the server itself refuses a request that lacks one, so
// no client bug can ever send it. viewType is ALL so that the id filter alone
// decides the selection.
const mutationTriggerActions = `mutation AlertTriggerActions($filter: OrFilterSelectionInput!, $actions: [TriggerActionInput!]!) {
  alertTriggerActions(filter: $filter, actions: $actions, viewType: ALL) {
    __typename
    ... on ActionsTriggered {
      actions {
        actionId
        success { id }
        skip { id skipMessage skipType }
        failure { id errorMessage errorType }
      }
    }
    ... on TriggerActionsScheduled { executionId bulkActionTriggerId }
    ... on TriggerActionsError {
      errors {
        errorMessage
        errorPayload {
          __typename
          ... on ActionsErrorLimitPayload { limit }
          ... on ActionsErrorConcurrentUserLimitPayload { limit }
        }
      }
    }
  }
}`

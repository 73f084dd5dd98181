package awstest

// The stand-ins for AWS's services take the requests their Query APIs'
// references document, signed (SigV4, recomputed by awstest): the
// real services are out of a test's reach. Each action lists the
// parameters AWS requires of it, in their Query API names.
var (
	// docs.aws.amazon.com/IAM/latest/APIReference/
	IAM = QueryAPI{Version: "2010-05-08", Namespace: "https://iam.amazonaws.com/doc/2010-05-08/", Actions: map[string][]string{
		"UpdateAccessKey":    {"AccessKeyId", "Status"},
		"DeleteLoginProfile": {"UserName"},
		"PutUserPolicy":      {"UserName", "PolicyName", "PolicyDocument"},
		"PutRolePolicy":      {"RoleName", "PolicyName", "PolicyDocument"},
		"TagUser":            {"UserName", "Tags.member.1.Key", "Tags.member.1.Value"},
		"TagRole":            {"RoleName", "Tags.member.1.Key", "Tags.member.1.Value"},
	}}
	// docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
	STS = QueryAPI{Version: "2011-06-15", Namespace: "https://sts.amazonaws.com/doc/2011-06-15/", Actions: map[string][]string{
		"AssumeRole": {"RoleArn", "RoleSessionName"},
	}}
	// docs.aws.amazon.com/AWSEC2/latest/APIReference/
	EC2 = QueryAPI{Version: "2016-11-15", Namespace: "http://ec2.amazonaws.com/doc/2016-11-15/", EC2: true, Actions: map[string][]string{
		"DescribeInstances":       {"InstanceId.1"},
		"ModifyInstanceAttribute": {"InstanceId", "GroupId.1"},
		"CreateSnapshots": {"InstanceSpecification.InstanceId", "CopyTagsFromSource",
			"TagSpecification.1.ResourceType", "TagSpecification.1.Tag.1.Key", "TagSpecification.1.Tag.1.Value"},
		"CreateTags": {"ResourceId.1", "Tag.1.Key", "Tag.1.Value"},
	}}
)

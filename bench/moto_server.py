#!/usr/bin/env python3
"""moto_server, optionally with SSM DescribeParameters paged like real AWS.

Usage: python3 moto_server.py [--describe-page N] [moto_server arguments...]

moto 5.2 answers DescribeParameters 10 parameters at a time whatever
MaxResults says; real AWS honours MaxResults up to 50. With --describe-page N
(N <= 50), this wrapper makes moto honour MaxResults up to N, so that the
benchmark can show what listing a path bundle costs against real AWS paging.
Everything else is stock moto. GetParametersByPath is left alone: real AWS
pages it at 10 too.
"""

import sys

from moto import server
from moto.ssm import responses


def patch_describe_parameters(limit):
    def describe_parameters(self):
        page_size = min(int(self._get_param("MaxResults", 10) or 10), limit)
        filters = self._get_param("Filters")
        parameter_filters = self._get_param("ParameterFilters")
        token = self._get_param("NextToken")
        if hasattr(token, "strip"):
            token = token.strip()
        token = int(token or "0")
        result = self.ssm_backend.describe_parameters(filters, parameter_filters)
        page = result[token : token + page_size]
        response = {"Parameters": [p.describe_response_object(False) for p in page]}
        # Like stock moto (and conservatively like AWS): a full page always
        # comes with a NextToken, even when nothing follows.
        if len(page) == page_size:
            response["NextToken"] = str(token + page_size)
        return responses.ActionResult(response)

    responses.SimpleSystemManagerResponse.describe_parameters = describe_parameters


def main():
    argv = sys.argv[1:]
    if argv[:1] == ["--describe-page"]:
        patch_describe_parameters(int(argv[1]))
        argv = argv[2:]
    server.main(argv)


if __name__ == "__main__":
    main()
